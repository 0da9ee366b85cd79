"""Slider panels for the lectures: widgets that redraw one figure in place, from a cache.

The figure is a PNG in an `Image` widget, so a saved notebook shows it before any cell runs
(with a note in place of ipywidgets' "disconnected" icons); nothing is printed. Sliders store
no floats in the widget state (JupyterLab saves ``4.0`` as ``4``).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

__all__ = ["SUMMARY_CLASS", "FIGURE_CLASS", "OFFLINE_CLASS", "SliderPanel", "float_slider",
           "int_slider", "log_slider", "recompute_button", "slider_panel"]

SUMMARY_CLASS = "inntheory-summary"
FIGURE_CLASS = "inntheory-figure"
OFFLINE_CLASS = "inntheory-offline"
PANEL_CLASS = "inntheory-panel"
CACHE_SIZE = 256  # rendered positions kept per panel (a PNG of a lecture figure is 30-80 kB)
# ipywidgets marks a view without a kernel with the class `jupyter-widgets-disconnected` (and
# a red chain icon); inside a panel the note, shown only while disconnected, says what to do.
NOTE_STYLE = f"""<style>
.{PANEL_CLASS}.jupyter-widgets-disconnected::before,
.{PANEL_CLASS} .jupyter-widgets-disconnected::before,
.jupyter-widgets-disconnected:has(.{PANEL_CLASS})::before {{ display: none; }}
.{OFFLINE_CLASS}:not(.jupyter-widgets-disconnected) {{ display: none; }}
.{OFFLINE_CLASS} {{ color: var(--jp-ui-font-color2, #555); font-style: italic; }}
</style>"""
OFFLINE_NOTE = NOTE_STYLE + """The saved figure of this panel. Run the cells (Run &rarr; Run
All Cells) to move the sliders."""
BUTTON_NOTE = NOTE_STYLE + "Run the cells (Run &rarr; Run All Cells) to use this button."


def _slider(kind: type, description: str, **options: Any) -> Any:
    """A slider of `kind` that fires when released, with room for a label and a 200 px track."""
    return kind(description=description, continuous_update=False, **options,
                style={"description_width": "initial"}, layout=widgets.Layout(width="340px"))


def int_slider(description: str, value: int, low: int, high: int, step: int = 1
               ) -> widgets.IntSlider:
    """An integer slider (training-sized work per move)."""
    return _slider(widgets.IntSlider, description, value=value, min=low, max=high, step=step)


def float_slider(description: str, value: float, low: float, high: float, step: float
                 ) -> widgets.SelectionSlider:
    """A slider over ``low, low + step, ..., high`` that passes floats to `render` (a
    selection: the widget state holds an index and labels). ValueError for a bad grid."""
    if not step > 0 or low > high:
        raise ValueError(f"need step > 0 and low <= high, got {low}..{high} by {step}")
    options = [round(low + k * step, 12) for k in range(round((high - low) / step) + 1)]
    nearest = min(options, key=lambda option: abs(option - value))
    if abs(nearest - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(f"value {value} is not on the grid {low}..{high} by {step}")
    return _slider(widgets.SelectionSlider, description, value=nearest,
                   options=[(f"{option:g}", option) for option in options])


def log_slider(description: str, value: int, options: list[int]) -> widgets.SelectionSlider:
    """A slider over a fixed list of (typically logarithmically spaced) counts."""
    if value not in options:
        raise ValueError(f"value {value} is not one of the options {options}")
    return _slider(widgets.SelectionSlider, description, options=options, value=value)


class SliderPanel(widgets.VBox):
    """Controls, summary and figure of `slider_panel` (see there); a `VBox` to display.

    Attributes:
        controls: keyword name -> control widget.
        summary: the `HTML` summary widget (CSS class ``inntheory-summary``).
        note: the `HTML` note shown while the panel has no kernel (``inntheory-offline``).
        figure: the `Image` widget showing the current figure (CSS class ``inntheory-figure``).
        renders: how many times `render` was called (cache misses), for tests and timing.
    """

    def __init__(self, render: Callable[..., str | None],
                 controls: Mapping[str, widgets.ValueWidget]) -> None:
        if not controls:
            raise ValueError("a slider panel needs at least one control")
        self._render = render
        self._cached = functools.lru_cache(CACHE_SIZE)(lambda key: self._draw(dict(key)))
        self.controls = dict(controls)
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%")).add_class(SUMMARY_CLASS)
        self.note = widgets.HTML(OFFLINE_NOTE).add_class(OFFLINE_CLASS)
        # shown at its own size (a VBox would stretch it to the page width)
        self.figure = widgets.Image(
            format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%")
        ).add_class(FIGURE_CLASS)
        self.renders = 0
        row = widgets.HBox(list(self.controls.values()),
                           layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([self.note, row, self.summary, self.figure])
        self.add_class(PANEL_CLASS)
        for control in self.controls.values():
            control.observe(self.redraw, names="value")
        self.redraw()

    def values(self) -> dict[str, Any]:
        """The current value of every control, by keyword name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self, _: Any = None, *, forget: bool = False) -> None:
        """Show the figure of the current values, from the cache or by calling `render`;
        `forget` drops every cached figure first (the data behind `render` changed)."""
        if forget:
            self._cached.cache_clear()
        self.figure.value, self.summary.value = self._cached(tuple(self.values().items()))

    def _draw(self, values: dict[str, Any]) -> tuple[bytes, str]:
        before = set(plt.get_fignums())
        self.renders += 1
        try:
            text = self._render(**values) or ""
        finally:
            new = [plt.figure(n) for n in plt.get_fignums() if n not in before]
        if len(new) != 1:
            for figure in new:
                plt.close(figure)
            raise RuntimeError(f"render({values}) must draw exactly one figure, drew {len(new)}")
        buffer = io.BytesIO()
        new[0].savefig(buffer, format="png", dpi=new[0].dpi, bbox_inches="tight")
        plt.close(new[0])
        return buffer.getvalue(), text


def slider_panel(render: Callable[..., str | None],
                 controls: Mapping[str, widgets.ValueWidget]) -> SliderPanel:
    """Controls above a figure that `render(**values)` redraws in place, cached per position.

    `render` draws exactly one new matplotlib figure for the given control values (no
    ``plt.show``; RuntimeError otherwise) and returns an HTML summary string (or None);
    `controls` maps keyword names to widgets whose `.value` is passed to `render`. Display the
    returned `SliderPanel` as a cell's last expression.
    """
    return SliderPanel(render, controls)


def recompute_button(description: str, recompute: Callable[[dict[str, Any]], Any],
                     panel: SliderPanel, *, tooltip: str = "") -> widgets.VBox:
    """A button that recomputes the stored result behind the panel's current values.

    Pressing it calls ``recompute(panel.values())`` (e.g. `inntheory.lab.store.cached` with
    ``recompute=True``), then redraws the panel with its cache of figures dropped; progress
    and errors go to a status line. Returns a `VBox` with attributes `button`, `status` and
    `note` (shown while there is no kernel).
    """
    button = widgets.Button(description=description, tooltip=tooltip, button_style="warning",
                            layout=widgets.Layout(width="max-content"))
    status = widgets.HTML()
    note = widgets.HTML(BUTTON_NOTE).add_class(OFFLINE_CLASS)

    def clicked(_: Any) -> None:
        values = panel.values()
        button.disabled = True
        status.value = f"recomputing {values} ..."
        try:
            recompute(values)
            panel.redraw(forget=True)
            status.value = f"recomputed and stored: {values}"
        except Exception as error:  # shown to the reader instead of a lost traceback
            status.value = f"recomputation failed: {type(error).__name__}: {error}"
        finally:
            button.disabled = False

    button.on_click(clicked)
    box = widgets.VBox([note, button, status]).add_class(PANEL_CLASS)
    box.button, box.status, box.note = button, status, note
    return box
