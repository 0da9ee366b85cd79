"""Slider panels redraw one figure in place, from a per-position cache, and publish their
summary in an HTML widget; the recompute button redraws with the cache dropped."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from inntheory.lab.widgets import (  # noqa: E402
    FIGURE_CLASS,
    SUMMARY_CLASS,
    int_slider,
    log_slider,
    recompute_button,
    slider_panel,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(calls):
    def render(depth, n):
        calls.append((depth, n))
        plt.figure(figsize=(2, 2))
        plt.plot([0, depth], [0, n])
        return f"depth {depth}, n {n}"

    return render


def test_panel_renders_once_then_on_every_new_position():
    calls = []
    open_before = plt.get_fignums()  # figures other tests of this process left open
    depth, count = int_slider("depth", 2, 1, 4), log_slider("n", 100, [100, 1000])
    panel = slider_panel(_render(calls), {"depth": depth, "n": count})
    assert calls == [(2, 100)] and panel.summary.value == "depth 2, n 100"
    assert SUMMARY_CLASS in panel.summary._dom_classes
    assert FIGURE_CLASS in panel.figure._dom_classes
    assert bytes(panel.figure.value).startswith(PNG_MAGIC)
    first = panel.figure.value
    depth.value = 3
    count.value = 1000
    assert calls[-1] == (3, 1000) and panel.summary.value == "depth 3, n 1000"
    assert panel.figure.value != first
    assert plt.get_fignums() == open_before, "the panel must close the figures it rendered"


def test_positions_seen_before_come_from_the_cache():
    calls = []
    depth = int_slider("depth", 2, 1, 4)
    panel = slider_panel(_render(calls), {"depth": depth, "n": log_slider("n", 100, [100])})
    first = panel.figure.value
    depth.value = 3
    depth.value = 2
    assert calls == [(2, 100), (3, 100)] and panel.renders == 2
    assert panel.figure.value == first and panel.summary.value == "depth 2, n 100"
    panel.redraw(forget=True)
    assert calls[-1] == (2, 100) and panel.renders == 3


def test_bad_panels_are_clear_errors():
    open_before = plt.get_fignums()  # figures other tests of this process left open
    with pytest.raises(ValueError, match="at least one control"):
        slider_panel(lambda: "", {})
    with pytest.raises(ValueError, match="not one of the options"):
        log_slider("n", 5, [100, 1000])
    with pytest.raises(RuntimeError, match="exactly one figure, drew 0"):
        slider_panel(lambda depth: "no figure", {"depth": int_slider("depth", 1, 1, 2)})

    def two(depth):
        plt.figure()
        plt.figure()

    with pytest.raises(RuntimeError, match="exactly one figure, drew 2"):
        slider_panel(two, {"depth": int_slider("depth", 1, 1, 2)})
    assert plt.get_fignums() == open_before


def test_recompute_button_recomputes_the_current_position_and_redraws():
    calls, recomputed = [], []
    depth = int_slider("depth", 2, 1, 4)
    panel = slider_panel(_render(calls), {"depth": depth, "n": log_slider("n", 100, [100])})
    box = recompute_button("retrain", recomputed.append, panel, tooltip="a few seconds")
    assert isinstance(box.button, widgets.Button) and box.button.description == "retrain"
    box.button.click()
    assert recomputed == [{"depth": 2, "n": 100}] and panel.renders == 2
    assert "recomputed and stored" in box.status.value and not box.button.disabled

    def failing(values):
        raise OSError("disk full")

    broken = recompute_button("retrain", failing, panel)
    broken.button.click()
    assert "failed: OSError: disk full" in broken.status.value
