"""Tables of results as text that fits a page and as HTML for notebooks.

A `Table` holds already formatted cells. `Table.text(width)` writes a fixed-width table of
at most `width` characters a line: when the columns do not fit side by side, they are split
into blocks shown one below the other, each repeating the first `index` columns (the row
labels), as pandas does for wide frames. The title and the notes are wrapped to the same
width. `Table.html()` writes one HTML table (title as caption, notes below), which a notebook
shows through the `_repr_html_` of the result classes and of a `Table` itself.

Example:
    >>> print(Table(["k", "error"], [["2", "0.1000"]], title="errors").text())
    errors
    k   error
    ---------
    2  0.1000
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["WIDTH", "Table", "Tabular"]

WIDTH = 88
"""Default line width of text tables: a terminal, and a notebook output at 1400 px."""
_GAP = "  "


@dataclass(frozen=True, repr=False)
class Table:
    """Formatted cells: `headers` (one per column) and `rows` (lists of strings, as many as
    there are headers); `title` above, `notes` (explanations of the columns) below; the first
    `index` columns label the rows and are repeated in every block of a split text table."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""
    notes: str = ""
    index: int = 1
    _widths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for r, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(
                    f"row {r} has {len(row)} cells for {len(self.headers)} headers")
        if not 0 <= self.index <= len(self.headers):
            raise ValueError(f"index {self.index} is not a number of leading columns")
        widths = tuple(
            max(len(h), *(len(row[c]) for row in self.rows)) if self.rows else len(h)
            for c, h in enumerate(self.headers)
        )
        object.__setattr__(self, "_widths", widths)

    def _blocks(self, width: int) -> list[list[int]]:
        """Column numbers of each text block: the index columns, then as many of the others
        as fit in `width` (at least one per block)."""
        index = list(range(self.index))
        used = sum(self._widths[c] + len(_GAP) for c in index)
        blocks, block, room = [], list(index), used
        for c in range(self.index, len(self.headers)):
            need = self._widths[c] + len(_GAP)
            if len(block) > len(index) and room + need - len(_GAP) > width:
                blocks.append(block)
                block, room = list(index), used
            block.append(c)
            room += need
        if len(block) > len(index) or not blocks:
            blocks.append(block)
        return blocks

    def text(self, width: int = WIDTH) -> str:
        """The table in lines of at most `width` characters (unless a single column is wider)."""
        lines = textwrap.wrap(self.title, width) if self.title else []
        for b, block in enumerate(self._blocks(width)):
            if b:
                lines.append("")
            header = _GAP.join(self.headers[c].rjust(self._widths[c]) for c in block)
            lines += [header, "-" * len(header)]
            lines += [_GAP.join(row[c].rjust(self._widths[c]) for c in block)
                      for row in self.rows]
        if self.notes:
            lines += textwrap.wrap(self.notes, width)
        return "\n".join(lines)

    __str__ = text
    __repr__ = text  # a notebook's text/plain output, and a terminal

    def html(self) -> str:
        """One HTML table: the title as caption, cells right-aligned, the notes below."""
        cell = "<{0} style='text-align: right'>{1}</{0}>"
        head = "".join(cell.format("th", html.escape(h)) for h in self.headers)
        body = "".join(
            "<tr>" + "".join(cell.format("td", html.escape(v.strip())) for v in row) + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        notes = (f"<p style='font-size: smaller'>{html.escape(self.notes)}</p>"
                 if self.notes else "")
        return (f"<div><table>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{notes}</div>")

    def _repr_html_(self) -> str:
        return self.html()


class Tabular:
    """A result shown as its table: text (`table`, `str`, IPython's text form) and HTML
    (`_repr_html_`) from the one `Table` that `_table()` builds. A dataclass using it sets
    `repr=False`: IPython prefers a class's own `__repr__` to an inherited `_repr_pretty_`."""

    def _table(self) -> Table:
        raise NotImplementedError

    def table(self, width: int = WIDTH) -> str:
        """Fixed-width text table of lines up to `width` characters (columns that do not fit
        are shown below, with the row labels repeated)."""
        return self._table().text(width)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self._table().html()

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(self.table())  # IPython's text form: the table, not every field
