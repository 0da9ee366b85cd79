"""Slider panels for the lectures: widgets that redraw one figure in place.

A panel is a row of ipywidgets controls, one `Output` holding the figure and one `HTML`
summary (CSS class ``inntheory-summary``, which the browser test reads). Moving a control
calls ``render(**values)``, which draws with matplotlib and returns the summary text; the
figure is replaced (``clear_output(wait=True)``), never stacked. Nothing is printed, so
nbval sees no stray output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

__all__ = ["SUMMARY_CLASS", "int_slider", "log_slider", "slider_panel"]

SUMMARY_CLASS = "inntheory-summary"


def int_slider(
    description: str, value: int, low: int, high: int, step: int = 1
) -> widgets.IntSlider:
    """An integer slider that only fires when released (training-sized work per move)."""
    return widgets.IntSlider(
        value=value, min=low, max=high, step=step, description=description,
        continuous_update=False, style={"description_width": "initial"},
    )


def log_slider(description: str, value: int, options: list[int]) -> widgets.SelectionSlider:
    """A slider over a fixed list of (typically logarithmically spaced) counts."""
    if value not in options:
        raise ValueError(f"value {value} is not one of the options {options}")
    return widgets.SelectionSlider(
        options=options, value=value, description=description,
        continuous_update=False, style={"description_width": "initial"},
    )


def slider_panel(
    render: Callable[..., str | None], controls: Mapping[str, widgets.ValueWidget]
) -> widgets.VBox:
    """Controls above a figure that `render(**values)` redraws in place.

    Arguments:
        render: draws the figure for the current control values with matplotlib (a new
            figure per call) and returns an HTML summary string (or None).
        controls: keyword name -> widget whose `.value` is passed to `render`.

    Returns:
        A `VBox` (controls, summary, figure) to display as a cell's last expression; it
        has attributes `summary` (the HTML widget), `output` and `controls`.
    """
    if not controls:
        raise ValueError("a slider panel needs at least one control")
    output = widgets.Output()
    summary = widgets.HTML()
    summary.add_class(SUMMARY_CLASS)

    def redraw(_: Any = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        with output:
            output.clear_output(wait=True)
            text = render(**values)
            plt.show()
        summary.value = text or ""

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    panel = widgets.VBox([widgets.HBox(list(controls.values())), summary, output])
    panel.summary, panel.output, panel.controls = summary, output, dict(controls)
    return panel
