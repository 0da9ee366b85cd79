"""Slider panels redraw in place and publish their summary in an HTML widget."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from inntheory.widgets import SUMMARY_CLASS, int_slider, log_slider, slider_panel  # noqa: E402


def test_panel_renders_once_then_on_every_change():
    calls = []

    def render(depth, n):
        calls.append((depth, n))
        plt.figure()
        plt.plot([0, depth], [0, n])
        return f"depth {depth}, n {n}"

    depth, count = int_slider("depth", 2, 1, 4), log_slider("n", 100, [100, 1000])
    panel = slider_panel(render, {"depth": depth, "n": count})
    assert calls == [(2, 100)] and panel.summary.value == "depth 2, n 100"
    assert SUMMARY_CLASS in panel.summary._dom_classes
    depth.value = 3
    count.value = 1000
    assert calls[-1] == (3, 1000) and panel.summary.value == "depth 3, n 1000"


def test_bad_panels_are_clear_errors():
    with pytest.raises(ValueError, match="at least one control"):
        slider_panel(lambda: "", {})
    with pytest.raises(ValueError, match="not one of the options"):
        log_slider("n", 5, [100, 1000])
