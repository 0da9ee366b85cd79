"""Slider panels for the lectures: widgets that redraw one figure in place, from a cache.

A panel is a row of ipywidgets controls, one `HTML` summary (CSS class ``inntheory-summary``,
which the browser test reads) and one `Image` widget holding the figure as a PNG. Moving a
control calls ``render(**values)``, which draws one matplotlib figure and returns the summary
text; the panel turns the figure into PNG bytes, closes it and keeps (PNG, summary) in an
in-memory cache keyed by the control values, so a position seen before redraws without
calling `render` again (a single widget update, well under a second). Nothing is printed, so
nbval sees no stray output, and the figure lives in the widget state a notebook saves, so a
saved notebook shows it before any cell runs. Until the cells run, the saved panel is not
connected to a kernel: a note (CSS class ``inntheory-offline``) then says so, in place of
ipywidgets' red "disconnected" icons, and hides itself once the panel is live.

The sliders store no floats in the widget state (`float_slider` is a selection over fixed
values): JupyterLab writes ``4.0`` as ``4`` when it saves, and a lecture saved after a run
would otherwise differ from the executed one in every such number.

`recompute_button` pairs a panel with `inntheory.lab.store.cached` results: a button that
recomputes the stored result of the current control values and redraws.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

__all__ = [
    "SUMMARY_CLASS",
    "FIGURE_CLASS",
    "OFFLINE_CLASS",
    "SliderPanel",
    "float_slider",
    "int_slider",
    "log_slider",
    "recompute_button",
    "slider_panel",
]

SUMMARY_CLASS = "inntheory-summary"
FIGURE_CLASS = "inntheory-figure"
OFFLINE_CLASS = "inntheory-offline"
PANEL_CLASS = "inntheory-panel"
CACHE_SIZE = 256
"""Rendered positions kept per panel (a PNG of a lecture figure is 30-80 kB)."""
SLIDER_LAYOUT = {"width": "340px"}
"""Every slider of a panel: room for a label and a track of about 200 px."""
# ipywidgets marks a view whose model has no kernel connection with the class
# `jupyter-widgets-disconnected` (and a red chain icon). Inside a panel the note says what
# to do instead; the note itself shows only while it is disconnected.
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


def int_slider(
    description: str, value: int, low: int, high: int, step: int = 1
) -> widgets.IntSlider:
    """An integer slider that only fires when released (training-sized work per move)."""
    return widgets.IntSlider(
        value=value, min=low, max=high, step=step, description=description,
        continuous_update=False, style={"description_width": "initial"},
        layout=widgets.Layout(**SLIDER_LAYOUT),
    )


def float_slider(
    description: str, value: float, low: float, high: float, step: float
) -> widgets.SelectionSlider:
    """A slider over ``low, low + step, ..., high`` that passes floats to `render`.

    A selection over fixed values rather than a `FloatSlider`, so the saved widget state holds
    an index and labels, no floats (which a JupyterLab save would rewrite, ``4.0`` -> ``4``).

    Raises:
        ValueError: a non-positive step, ``low > high``, or `value` not on the grid.
    """
    if not step > 0 or low > high:
        raise ValueError(f"need step > 0 and low <= high, got {low}..{high} by {step}")
    count = round((high - low) / step)
    options = [round(low + k * step, 12) for k in range(count + 1)]
    nearest = min(options, key=lambda option: abs(option - value))
    if abs(nearest - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(f"value {value} is not on the grid {low}..{high} by {step}")
    return widgets.SelectionSlider(
        options=[(f"{option:g}", option) for option in options], value=nearest,
        description=description, continuous_update=False,
        style={"description_width": "initial"}, layout=widgets.Layout(**SLIDER_LAYOUT),
    )


def log_slider(description: str, value: int, options: list[int]) -> widgets.SelectionSlider:
    """A slider over a fixed list of (typically logarithmically spaced) counts."""
    if value not in options:
        raise ValueError(f"value {value} is not one of the options {options}")
    return widgets.SelectionSlider(
        options=options, value=value, description=description,
        continuous_update=False, style={"description_width": "initial"},
        layout=widgets.Layout(**SLIDER_LAYOUT),
    )


class SliderPanel(widgets.VBox):
    """Controls, summary and figure of `slider_panel` (see there); a `VBox` to display.

    Attributes:
        controls: keyword name -> control widget.
        summary: the `HTML` summary widget (CSS class ``inntheory-summary``).
        note: the `HTML` note shown while the panel has no kernel (``inntheory-offline``).
        figure: the `Image` widget showing the current figure (CSS class ``inntheory-figure``).
        renders: how many times `render` was called (cache misses), for tests and timing.
    """

    def __init__(
        self, render: Callable[..., str | None], controls: Mapping[str, widgets.ValueWidget]
    ) -> None:
        if not controls:
            raise ValueError("a slider panel needs at least one control")
        self._render = render
        self._cache: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self.controls = dict(controls)
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%")).add_class(SUMMARY_CLASS)
        self.note = widgets.HTML(OFFLINE_NOTE).add_class(OFFLINE_CLASS)
        # shown at its own size (a VBox would stretch it to the page width)
        self.figure = widgets.Image(
            format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%")
        ).add_class(FIGURE_CLASS)
        self.renders = 0
        row = widgets.HBox(
            list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([self.note, row, self.summary, self.figure])
        self.add_class(PANEL_CLASS)
        for control in self.controls.values():
            control.observe(self.redraw, names="value")
        self.redraw()

    def values(self) -> dict[str, Any]:
        """The current value of every control, by keyword name."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self, _: Any = None, *, forget: bool = False) -> None:
        """Show the figure of the current values: from the cache, else by calling `render`.

        Arguments:
            _: the traitlets change (ignored), so this method can observe the controls.
            forget: drop every cached figure first (the data behind `render` changed).
        """
        if forget:
            self._cache.clear()
        values = self.values()
        key = tuple(values.values())
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = self._draw(values)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        png, text = self._cache[key]
        self.figure.value = png
        self.summary.value = text

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


def slider_panel(
    render: Callable[..., str | None], controls: Mapping[str, widgets.ValueWidget]
) -> SliderPanel:
    """Controls above a figure that `render(**values)` redraws in place, cached per position.

    Arguments:
        render: draws exactly one new matplotlib figure for the given control values (do not
            call ``plt.show``) and returns an HTML summary string (or None).
        controls: keyword name -> widget whose `.value` is passed to `render`.

    Returns:
        A `SliderPanel` (controls, summary, figure) to display as a cell's last expression.

    Raises:
        ValueError: no controls.
        RuntimeError: `render` drew no figure or more than one.
    """
    return SliderPanel(render, controls)


def recompute_button(
    description: str, recompute: Callable[[dict[str, Any]], Any], panel: SliderPanel,
    *, tooltip: str = "",
) -> widgets.VBox:
    """A button that recomputes the stored result behind the panel's current values.

    Pressing it calls ``recompute(panel.values())`` (e.g. a function that calls
    `inntheory.lab.store.cached` with ``recompute=True``), then redraws the panel with its cache
    of figures dropped. Progress and errors go to a status line below the button.

    Arguments:
        description: the button label (keep it short: it must not be cut).
        recompute: called with the panel's control values.
        panel: the panel to redraw afterwards.
        tooltip: shown on hover, e.g. how long a recomputation takes.

    Returns:
        A `VBox` (note, button, status) with attributes `button`, `status` and `note` (shown
        while the button has no kernel, as a panel's).
    """
    button = widgets.Button(
        description=description, tooltip=tooltip, button_style="warning",
        layout=widgets.Layout(width="max-content"),
    )
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
