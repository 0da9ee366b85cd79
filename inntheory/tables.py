"""Tables of results as text that fits a page and as HTML for notebooks.

`Table.text(width)` writes a fixed-width table; columns that do not fit side by side are
split into blocks one below the other, each repeating the first `index` columns, as pandas
does for wide frames. `Table.html()` writes one HTML table (title as caption, notes below).
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
    """Formatted cells: `headers` and `rows` (lists of as many strings); `title` above, `notes`
    below; the first `index` columns label the rows (repeated in every text block)."""

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
        """Column numbers of each text block: the index columns and as many others as fit."""
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
    """A result shown as the `Table` its `_table()` builds: as text (`table`, `str`, IPython)
    and HTML. A dataclass using it sets `repr=False` (IPython prefers a class's `__repr__`)."""

    def _table(self) -> Table:
        raise NotImplementedError

    def table(self, width: int = WIDTH) -> str:
        """The table as text of lines up to `width` characters (see `Table.text`)."""
        return self._table().text(width)

    __str__ = table

    def _repr_html_(self) -> str:
        return self._table().html()

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(self.table())  # IPython's text form: the table, not every field
