"""Real-browser tests: JupyterLab driven by Debian's chromium through Playwright.

A module-scoped JupyterLab serves a temporary copy of the repository's lectures
(``notebooks/`` and ``jupytext.toml``, so no checkpoints or saves touch the repository) the
way the README's lectures command does: the notebooks signed with ``jupyter trust`` and the
copy as the server root. JupyterLab's user settings are left at their defaults, so the pages
show what a student sees: the notification asking whether to fetch Jupyter news, and a
kernel-selection dialog where JupyterLab asks for one; the tests answer them as a student
would (no news; accept the proposed kernel).

- ``test_lecture_figures``: every lecture, opened and *not* run, has its saved figures drawn
  (each goes to the screenshot folder, below) and no widget shown as raw
  ``VBox(...)`` text; a slider lecture draws its saved panel (a noUiSlider handle, summary
  and one figure); lecture 5's button label fits its button and its two tables fit the
  page, one line per cell.
- ``test_slider_redraws_from_cache``: Run All from the Run menu, wait until every cell has run
  without error, focus the first slider handle of the panel (ipywidgets 8 renders noUiSlider,
  whose ``.noUi-handle`` takes arrow keys), press ArrowRight (a new position: rendered) and
  ArrowLeft (back: from the panel's cache), and measure the time from the key press until the
  summary (the ``HTML`` widget with CSS class ``inntheory-summary``) shows the new text and
  the figure (``inntheory-figure``) a new image. The redraw from the cache must take at most
  ``CACHED_REDRAW_S``. A tiny notebook written by this module (IntSlider + HTML summary)
  tests the harness itself.

- ``test_run_save_reopen``: lecture 3 run (Run All), saved from JupyterLab, closed and
  reopened without a kernel: every widget its outputs show is in its saved widget state (the
  lectures' JupyterLab default, ipywidgets' ``saveState``, which the README's lectures command
  installs and this server is given the same way), the reopened panel is drawn with its note
  "Run the cells ... to move the sliders" and no "model not found"; the save changed only
  what a run changes (outputs, execution counts, widget state); run again, the reopened
  panel's slider redraws.
- ``test_lecture_figures`` also checks that no text output is wider than the notebook: every
  line of every stream or text output shows on one line, unwrapped.

Screenshots (one of each lecture's first screen, one per figure, tables, panels after a move)
go to the folder named by ``INNTHEORY_ARTIFACTS`` (default: a fresh temporary folder, printed).

Without ``/usr/bin/chromium`` or Playwright the tests are skipped, unless the environment
variable ``CI`` is set, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

__all__: list[str] = []

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "inntheory-browser-test"
LAB_SETTINGS = Path(__file__).resolve().parents[1] / "notebooks" / "lab-settings" / "overrides.d"
CACHED_REDRAW_S = 1.0
"""The most a slider move back to a position seen before may take, key press to new figure."""
LECTURES = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "notebooks").glob(
    "[0-9]*.ipynb"))
# Lectures with a slider panel, and how long Run All may take in the browser.
SLIDER_LECTURES = {
    "01_interacting_theories.ipynb": 180,
    "02_polynomial_inn.ipynb": 180,
    "03_diagrammatic_rules.ipynb": 180,
    "05_depth_and_data.ipynb": 120,
}
# True once the current notebook's kernel is connected and idle (needs expose_app_in_browser).
KERNEL_READY = """() => {
    const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
    return kernel?.connectionStatus === "connected" && kernel.status === "idle";
}"""
# True once the current widget is a notebook whose model has loaded.
NOTEBOOK_OPEN = """(name) => {
    const panel = window.jupyterapp?.shell.currentWidget;
    return panel?.context?.path?.endsWith(name) && panel.context.isReady
        && panel.content?.widgets?.length > 0;
}"""
# Record the status of every execute_reply of the current notebook's kernel from now on.
WATCH_REPLIES = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const replies = (window.inntheoryReplies = []);
    kernel.anyMessage.connect((_, args) => {
        if (args.direction === "recv" && args.msg.header.msg_type === "execute_reply") {
            replies.push(args.msg.content.status);
        }
    });
}"""
# True once every non-empty code cell got its reply and the kernel is idle again.
RUN_ALL_DONE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const code = Array.from(panel.content.model.cells).filter(
        (cell) => cell.type === "code" && cell.sharedModel.getSource().trim() !== ""
    );
    const kernel = panel.sessionContext.session.kernel;
    return window.inntheoryReplies.length >= code.length && kernel.status === "idle";
}"""
# Render every cell of the windowed notebook: scroll it through from top to bottom.
SCROLL_THROUGH = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    const notebook = panel.content;
    for (let i = 0; i < notebook.widgets.length; i++) {
        await notebook.scrollToItem(i, "start");
        await new Promise((resolve) => setTimeout(resolve, 30));
    }
    await notebook.scrollToItem(0, "start");
}"""
# Scroll the notebook through; at each cell, every text output (stream, text/plain) whose
# lines are wrapped or cut: [cell, lines, lines shown, longest line, start of the text].
WIDE_TEXT = """async () => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const found = [];
    for (let i = 0; i < notebook.widgets.length; i++) {
        await notebook.scrollToItem(i, "start");
        await new Promise((resolve) => setTimeout(resolve, 30));
        for (const pre of notebook.widgets[i].node.querySelectorAll(".jp-OutputArea-output pre")) {
            const lines = pre.innerText.replace(/\\n$/, "").split("\\n");
            const style = getComputedStyle(pre);
            const height = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
            const shown = Math.round(pre.getBoundingClientRect().height / height);
            if (pre.scrollWidth > pre.clientWidth + 1 || shown > lines.length) {
                found.push([i, lines.length, shown, Math.max(...lines.map((l) => l.length)),
                            pre.innerText.slice(0, 60)]);
            }
        }
    }
    await notebook.scrollToItem(0, "start");
    return found;
}"""
# Scroll the notebook through; at each cell, the widgets of a panel or a recompute button
# (`inntheory.lab.widgets`) that show ipywidgets' red "disconnected" icon (a ::before glyph)
# where the panel's note should say how to connect them.
UNEXPLAINED_ICONS = """async () => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const found = [];
    for (let i = 0; i < notebook.widgets.length; i++) {
        await notebook.scrollToItem(i, "start");
        await new Promise((resolve) => setTimeout(resolve, 30));
        const outputs = Array.from(notebook.widgets[i].node.querySelectorAll(
            ".jp-OutputArea-output")).filter((o) => o.querySelector(".inntheory-panel"));
        for (const el of outputs.flatMap((o) => Array.from(
                o.querySelectorAll(".jupyter-widgets-disconnected")))) {
            const icon = getComputedStyle(el, "::before");
            if (icon.display !== "none" && icon.content !== "none") {
                found.push([i, el.className]);
            }
        }
    }
    await notebook.scrollToItem(0, "start");
    return found;
}"""
STDERR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
SUMMARY = ".jp-OutputArea .inntheory-summary"
FIGURE = ".jp-OutputArea .inntheory-figure"
RAW_WIDGET_TEXT = "VBox(children="
TINY_NOTEBOOK = "harness/tiny_slider.ipynb"
TINY_SOURCE = """\
import io

import ipywidgets as widgets

slider = widgets.IntSlider(value=3, min=0, max=10, description="n")
summary = widgets.HTML().add_class("inntheory-summary")
figure = widgets.Image(format="png").add_class("inntheory-figure")
PNG = {}


def update(change=None):
    summary.value = f"n = {slider.value}, n squared = {slider.value ** 2}"
    figure.value = PNG.setdefault(slider.value, _png(slider.value))


def _png(n):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar([0], [n])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


slider.observe(update, names="value")
update()
widgets.VBox([slider, summary, figure])
"""


@dataclass
class Lab:
    """A running JupyterLab server: its URL, process, log file and served folder."""

    url: str
    process: subprocess.Popen
    log: Path
    root: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _require_browser() -> None:
    """Skip (fail under CI) when chromium or Playwright is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('Python playwright (pip install -e ".[test]")')
    if missing:
        reason = "real-browser test needs " + " and ".join(missing)
        if _under_ci():
            pytest.fail(reason + "; CI is set, so this is a failure", pytrace=False)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(
        url, method=method, headers={"Authorization": f"token {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def _write_tiny_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(TINY_SOURCE)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)


def _stop(lab: Lab) -> None:
    """Shut the server down through its API (kernels included), then by signal if needed."""
    if lab.process.poll() is None:
        try:
            _request(f"{lab.url}/api/shutdown", method="POST")
            lab.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            lab.process.terminate()
            try:
                lab.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                lab.process.kill()
                lab.process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium launched headless by Playwright."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The screenshot folder: ``INNTHEORY_ARTIFACTS``, else a fresh temporary folder."""
    folder = Path(os.environ.get("INNTHEORY_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port serving a trusted copy of the lectures."""
    _require_browser()
    work = tmp_path_factory.mktemp("lab")
    served = work / "served"
    shutil.copytree(
        repo_root / "notebooks",
        served / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    shutil.copy(repo_root / "jupytext.toml", served)
    _write_tiny_notebook(served / TINY_NOTEBOOK)
    # As the README's lectures command: the lectures' JupyterLab default in the settings
    # folder of the environment (here a stand-in, given as --LabApp.app_settings_dir).
    app_settings = work / "app-settings"
    app_settings.mkdir()
    if LAB_SETTINGS.exists():
        shutil.copytree(LAB_SETTINGS, app_settings / LAB_SETTINGS.name)
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(work / "config"),
        "JUPYTER_DATA_DIR": str(work / "data"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
        "IPYTHONDIR": str(work / "ipython"),
        "TQDM_DISABLE": "1",
    }
    # As the README's lectures command: sign the notebooks for this (temporary) user.
    subprocess.run(
        [sys.executable, "-m", "jupyter", "trust", *map(str, served.glob("*/*.ipynb"))],
        env=env, check=True, capture_output=True,
    )
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={served}",
        f"--IdentityProvider.token={TOKEN}",
        f"--LabApp.user_settings_dir={work / 'settings'}",
        f"--LabApp.app_settings_dir={app_settings}",
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = work / "lab.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=served, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Lab(f"http://127.0.0.1:{port}", process, log, served)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if _request(f"{server.url}/api/status") == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in 60 s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(server)


def _answer_popups(page: Any) -> None:
    """Answer what a fresh JupyterLab asks, as a student would: accept the proposed kernel in
    a kernel-selection dialog, and say no to the news notification."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    news = page.locator(".jp-toast-button", has_text=re.compile(r"^\s*No\s*$"))
    for button in (dialog, news):
        try:
            if button.count() and button.first.is_visible():
                button.first.click(timeout=3_000)
        except PlaywrightTimeout:
            pass  # still sliding in, or gone already: the caller asks again


def _open(page: Any, lab: Lab, notebook: str, workspace: str, *, kernel: bool) -> None:
    """Open `notebook` in a fresh workspace (JupyterLab would otherwise restore the tabs of
    the previous page), answer the pop-ups, and wait for the notebook (and its kernel)."""
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={TOKEN}")
    page.wait_for_function(NOTEBOOK_OPEN, arg=Path(notebook).name, timeout=90_000)
    deadline = time.monotonic() + 90
    while True:
        _answer_popups(page)
        ready = page.evaluate(KERNEL_READY)
        if (ready or not kernel) and time.monotonic() > deadline - 85:
            break  # a few seconds given to the pop-ups to show up
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {notebook} did not become ready in 90 s")
        page.wait_for_timeout(250)
    _answer_popups(page)


def _new_page(browser: Any) -> Any:
    return browser.new_page(viewport={"width": 1400, "height": 1000})


def _shut_kernels(lab: Lab) -> None:
    """Shut down every kernel of the server (a closed page leaves its kernel running)."""
    request = urllib.request.Request(
        f"{lab.url}/api/kernels", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        kernels = json.loads(response.read())
    for kernel in kernels:
        _request(f"{lab.url}/api/kernels/{kernel['id']}", method="DELETE")


@pytest.mark.parametrize("notebook", LECTURES)
def test_lecture_figures(
    browser: Any, lab: Lab, notebook: str, repo_root: Path, artifacts: Path
) -> None:
    """Every saved figure of every lecture is drawn before any cell runs, and so are the saved
    slider panels (trusted notebooks), each with its note on how to make it live; no text
    output is wider than the notebook; a screenshot of the lecture and of each figure."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    stem = Path(notebook).stem
    for old in artifacts.glob(f"{stem}-*.png"):
        old.unlink()
    saved = nbformat.read(repo_root / "notebooks" / notebook, as_version=4)
    expected = sum(
        "image/png" in output.get("data", {}) for cell in saved.cells
        for output in cell.get("outputs", [])
    )
    page = _new_page(browser)
    try:
        _open(page, lab, f"notebooks/{notebook}", f"figures-{stem}", kernel=False)
        page.screenshot(path=str(artifacts / f"{stem}.png"))
        icons = page.evaluate(UNEXPLAINED_ICONS)
        assert not icons, f"{notebook}: red 'disconnected' icons, no note: {icons[:3]}"
        wide = page.evaluate(WIDE_TEXT)
        assert not wide, (f"{notebook}: text wider than the notebook, as [cell, lines, lines "
                          f"shown, longest line, text]: {wide}")
        page.evaluate(SCROLL_THROUGH)
        figures = page.locator(
            ".jp-OutputArea-output[data-mime-type='image/png'] img, .inntheory-figure")
        count = figures.count()
        assert count >= expected, f"{notebook}: {count} figures drawn, {expected} saved"
        for k in range(count):
            figure = figures.nth(k)
            figure.scroll_into_view_if_needed()
            width = figure.evaluate("(img) => img.complete ? img.naturalWidth : 0")
            assert width > 100, f"{notebook}: figure {k + 1} is not drawn"
            figure.screenshot(path=str(artifacts / f"{stem}-{k + 1}.png"))
        assert RAW_WIDGET_TEXT not in page.locator(".jp-Notebook").inner_text(), (
            f"{notebook}: a saved widget shows as raw text (is the notebook trusted?)")
        if notebook in SLIDER_LECTURES:  # the saved panel: slider, summary and figure drawn
            panel = page.locator(".jp-OutputArea", has=page.locator(".inntheory-summary")).first
            panel.scroll_into_view_if_needed(timeout=20_000)
            expect(panel.locator(".noUi-handle").first).to_be_visible(timeout=20_000)
            expect(panel.locator(".inntheory-summary").first).not_to_have_text("")
            assert panel.locator(".inntheory-figure").count() == 1
            expect(panel.locator(".inntheory-offline").first).to_contain_text(
                "to move the sliders")
            panel.screenshot(path=str(artifacts / f"{stem}-panel-saved.png"))
        if notebook == "05_depth_and_data.ipynb":  # the button label is not cut
            button = page.locator("button", has_text="train one more seed").first
            overflow = button.evaluate("(b) => b.scrollWidth - b.clientWidth")
            assert overflow <= 0, f"the button label overflows by {overflow} px"
        if notebook == "05_depth_and_data.ipynb":  # its tables fit, one line per cell
            tables = page.locator(".jp-OutputArea-output table")
            assert tables.count() == 2, f"lecture 5 shows {tables.count()} tables, not 2"
            for k in range(tables.count()):
                table = tables.nth(k)
                table.scroll_into_view_if_needed()
                table.screenshot(path=str(artifacts / f"{stem}-table-{k + 1}.png"))
                # its width against the page, and the most text lines any cell takes
                width, room, lines = table.evaluate("""(t) => {
                    const lines = (cell) => {
                        const range = document.createRange();
                        range.selectNodeContents(cell);
                        const tops = Array.from(range.getClientRects(),
                                                (r) => Math.round(r.top));
                        return new Set(tops).size;
                    };
                    const cells = Array.from(t.querySelectorAll("td, th"));
                    return [t.getBoundingClientRect().width, t.parentElement.clientWidth,
                            Math.max(...cells.map(lines))];
                }""")
                assert width <= room and lines == 1, (
                    f"table {k + 1} is {width:.0f} px wide in {room} px, cells of {lines} lines")
    except (AssertionError, PlaywrightTimeout) as error:
        raise AssertionError(f"{error}\n--- JupyterLab log ---\n{lab.log_tail()}") from error
    finally:
        page.close()
        _shut_kernels(lab)


# True once the first summary is drawn: the text `_move` compares with, read the same way.
DRAWN = "(summary) => document.querySelector(summary).innerText.trim() !== ''"


def _move(page: Any, handle: Any, key: str, before: tuple[str, str]) -> tuple[float, str, str]:
    """Press `key` on the focused slider handle; seconds until the summary and the figure
    both changed from `before`, and the new (summary, figure source)."""
    changed = """([summary, figure, text, source]) => {
        const s = document.querySelector(summary), f = document.querySelector(figure);
        return s.innerText !== text && f.getAttribute("src") !== source;
    }"""
    handle.focus()
    start = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(changed, arg=[SUMMARY, FIGURE, *before], polling="raf",
                           timeout=60_000)
    seconds = time.perf_counter() - start
    after = page.evaluate(
        "([s, f]) => [document.querySelector(s).innerText,"
        " document.querySelector(f).getAttribute('src')]", [SUMMARY, FIGURE])
    return seconds, after[0], after[1]


def _run_all(page: Any, timeout_s: float) -> None:
    """Run All from the Run menu; wait until every code cell replied, all "ok"."""
    page.evaluate(WATCH_REPLIES)
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    page.wait_for_function(RUN_ALL_DONE, timeout=timeout_s * 1000)
    statuses = page.evaluate("() => window.inntheoryReplies")
    errors = page.locator(STDERR_OUTPUT).all_inner_texts()
    assert set(statuses) == {"ok"}, f"Run All replies {statuses}; stderr: {errors}"


@pytest.mark.parametrize(
    ("notebook", "run_all_timeout_s"),
    [(TINY_NOTEBOOK, 60), *((f"notebooks/{k}", v) for k, v in SLIDER_LECTURES.items())],
    ids=["harness", *(Path(k).stem for k in SLIDER_LECTURES)],
)
def test_slider_redraws_from_cache(
    browser: Any, lab: Lab, notebook: str, run_all_timeout_s: float, artifacts: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    stem = Path(notebook).stem
    page = _new_page(browser)
    try:
        _open(page, lab, notebook, f"run-{stem}", kernel=True)
        _run_all(page, run_all_timeout_s)
        summary = page.locator(SUMMARY).first
        summary.wait_for(state="visible", timeout=10_000)
        expect(summary).not_to_have_text("", timeout=30_000)
        # The first slider of the output that holds the summary.
        output = page.locator(".jp-OutputArea", has=page.locator(".inntheory-summary")).first
        handle = output.locator(".noUi-handle").first
        handle.wait_for(state="visible", timeout=10_000)
        # JupyterLab's windowed notebook skips rendering cells far from the viewport, and a
        # skipped summary's innerText is empty: bring the panel in, and wait until it is drawn
        handle.scroll_into_view_if_needed()
        page.wait_for_function(DRAWN, arg=SUMMARY, polling="raf", timeout=10_000)
        start = tuple(page.evaluate(
            "([s, f]) => [document.querySelector(s).innerText,"
            " document.querySelector(f).getAttribute('src')]", [SUMMARY, FIGURE]))
        new_s, new_text, new_source = _move(page, handle, "ArrowRight", start)
        if notebook == TINY_NOTEBOOK:
            assert new_text == "n = 4, n squared = 16"
        cached_s, back_text, _ = _move(page, handle, "ArrowLeft", (new_text, new_source))
        assert back_text == start[0], "moving back did not restore the first summary"
        print(f"{stem}: new position {new_s:.2f} s, back from the cache {cached_s:.2f} s")
        assert cached_s <= CACHED_REDRAW_S, (
            f"{stem}: redraw from the cache took {cached_s:.2f} s > {CACHED_REDRAW_S} s")
    except (AssertionError, PlaywrightTimeout) as error:
        raise AssertionError(f"{error}\n--- JupyterLab log ---\n{lab.log_tail()}") from error
    finally:
        page.screenshot(path=str(artifacts / f"browser-{stem}.png"))
        page.close()
        _shut_kernels(lab)


REOPEN_LECTURE = "notebooks/03_diagrammatic_rules.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Save the current notebook through JupyterLab (as Ctrl+S); true once it is written.
SAVE = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.context.save();
    return !panel.context.model.dirty;
}"""
# Scroll the notebook through; the cells whose outputs say a widget model is missing.
MISSING_MODELS = """async () => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    const found = [];
    for (let i = 0; i < notebook.widgets.length; i++) {
        await notebook.scrollToItem(i, "start");
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (notebook.widgets[i].node.innerText.includes("model not found")) {
            found.push(i);
        }
    }
    await notebook.scrollToItem(0, "start");
    return found;
}"""


def _widget_ids(notebook: dict) -> tuple[set[str], set[str]]:
    """(models the outputs show, models the saved widget state holds)."""
    shown = {output["data"][WIDGET_VIEW]["model_id"]
             for cell in notebook["cells"] for output in cell.get("outputs", [])
             if WIDGET_VIEW in output.get("data", {})}
    saved = set(notebook["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}))
    return shown, saved


def _beyond_a_run(notebook: dict) -> tuple[list[dict], dict]:
    """What a run must not change: cells without outputs and execution counts, and the
    notebook metadata without the widget state."""
    cells = [{k: v for k, v in cell.items() if k not in ("outputs", "execution_count")}
             for cell in notebook["cells"]]
    return cells, {k: v for k, v in notebook["metadata"].items() if k != "widgets"}


def test_run_save_reopen(browser: Any, lab: Lab, artifacts: Path) -> None:
    """Run a lecture with a panel, save it from JupyterLab, reopen it: the saved outputs and
    the saved widget state agree, the panel is drawn (with its note, not an error), only what a
    run changes has changed, and after running again the panel's slider redraws."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    path = lab.root / REOPEN_LECTURE
    before = json.loads(path.read_text())
    stem = Path(REOPEN_LECTURE).stem
    page = _new_page(browser)
    try:
        _open(page, lab, REOPEN_LECTURE, "reopen-run", kernel=True)
        _run_all(page, 180)
        assert page.evaluate(SAVE), "JupyterLab did not save the lecture"
        after = json.loads(path.read_text())
        shown, saved = _widget_ids(after)
        assert shown and shown <= saved, (
            f"the saved outputs show widgets {sorted(shown - saved)} that the saved widget "
            "state lacks: reopened, they read 'model not found' (is ipywidgets' saveState on?)")
        assert _beyond_a_run(after) == _beyond_a_run(before), "the save changed more than a run"
    except (AssertionError, PlaywrightTimeout) as error:
        raise AssertionError(f"{error}\n--- JupyterLab log ---\n{lab.log_tail()}") from error
    finally:
        page.close()
        _shut_kernels(lab)
    page = _new_page(browser)
    try:
        _open(page, lab, REOPEN_LECTURE, "reopen-saved", kernel=True)
        missing = page.evaluate(MISSING_MODELS)
        assert not missing, f"reopened, cells {missing} say 'model not found'"
        panel = page.locator(".jp-OutputArea", has=page.locator(".inntheory-summary")).first
        panel.scroll_into_view_if_needed(timeout=20_000)
        expect(panel.locator(".noUi-handle").first).to_be_visible(timeout=20_000)
        expect(panel.locator(".inntheory-summary").first).not_to_have_text("")
        note = panel.locator(".inntheory-offline").first
        expect(note).to_contain_text("to move the sliders")
        panel.screenshot(path=str(artifacts / f"{stem}-reopened.png"))
        _run_all(page, 180)
        summary = page.locator(SUMMARY).first
        output = page.locator(".jp-OutputArea", has=page.locator(".inntheory-summary")).first
        handle = output.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        expect(summary).not_to_have_text("", use_inner_text=True, timeout=30_000)
        expect(output.locator(".inntheory-offline").first).to_be_hidden()
        start = (summary.inner_text(), page.locator(FIGURE).first.get_attribute("src"))
        seconds, text, _ = _move(page, handle, "ArrowRight", start)
        assert text != start[0], "the reopened and rerun panel did not redraw"
        print(f"{stem} reopened and rerun: a new position in {seconds:.2f} s")
    except (AssertionError, PlaywrightTimeout) as error:
        raise AssertionError(f"{error}\n--- JupyterLab log ---\n{lab.log_tail()}") from error
    finally:
        page.screenshot(path=str(artifacts / f"{stem}-reopened-rerun.png"))
        page.close()
        _shut_kernels(lab)
