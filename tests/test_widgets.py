"""Slider panels redraw one figure in place, from a per-position cache, and publish their
summary in an HTML widget; the recompute button redraws with the cache dropped. A saved panel
says how to make it live, and the saved widget state of the lectures is what a JupyterLab save
writes (no float that JavaScript would print differently)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from inntheory.lab.widgets import (  # noqa: E402
    FIGURE_CLASS,
    OFFLINE_CLASS,
    SUMMARY_CLASS,
    float_slider,
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
    assert OFFLINE_CLASS in box.note._dom_classes and "to use this button" in box.note.value

    def failing(values):
        raise OSError("disk full")

    broken = recompute_button("retrain", failing, panel)
    broken.button.click()
    assert "failed: OSError: disk full" in broken.status.value


def test_float_slider_passes_floats_and_saves_none():
    calls = []
    slider = float_slider("m2", 1.0, -1.5, 2.0, 0.25)
    panel = slider_panel(lambda m2: calls.append(m2) or plt.figure() and "", {"m2": slider})
    assert calls == [1.0] and isinstance(calls[0], float)
    assert slider.options[0] == ("-1.5", -1.5) and slider.options[-1] == ("2", 2.0)
    assert len(slider.options) == 15
    slider.value = 0.25
    assert calls[-1] == 0.25
    state = json.dumps(panel.get_manager_state(drop_defaults=False)["state"])
    assert not _integral_floats(json.loads(state)), "a float in the widget state"
    with pytest.raises(ValueError, match="not on the grid"):
        float_slider("g", 0.3, 0.0, 1.0, 0.25)
    with pytest.raises(ValueError, match="step > 0"):
        float_slider("g", 0.0, 0.0, 1.0, 0.0)


def test_saved_panel_explains_itself_until_it_is_live():
    panel = slider_panel(_render([]), {"depth": int_slider("depth", 2, 1, 4),
                                       "n": log_slider("n", 100, [100])})
    note = panel.children[0]
    assert OFFLINE_CLASS in note._dom_classes and "Run the cells" in note.value
    # the note hides itself, by CSS, once ipywidgets no longer marks it disconnected
    assert f".{OFFLINE_CLASS}:not(.jupyter-widgets-disconnected)" in note.value


def _integral_floats(value, path="") -> list[str]:
    """Paths of the floats with an integral value (Python writes 4.0, JavaScript 4)."""
    if isinstance(value, float):
        return [path] if value.is_integer() else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _integral_floats(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _integral_floats(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize(
    "notebook", sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb")),
    ids=lambda path: path.stem)
def test_lectures_are_committed_as_jupyterlab_saves_them(notebook):
    """JupyterLab (saveState) writes the widget state through JSON.stringify, which prints the
    float 4.0 as 4: a committed lecture with such a float changes on every save."""
    saved = json.loads(notebook.read_text())
    state = saved["metadata"].get("widgets", {})
    assert not _integral_floats(state), f"{notebook.name}: {_integral_floats(state)[:5]}"
