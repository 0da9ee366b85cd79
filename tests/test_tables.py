"""Result tables: text that fits a page (wide tables split into blocks that repeat the row
labels) and HTML for notebooks; the comparison and cumulant results use them."""

from __future__ import annotations

import pytest
import torch

import inntheory as it
from inntheory.tables import WIDTH, Table


def _wide(columns: int = 12) -> Table:
    headers = ["k", "scale", *(f"model {c}: error" for c in range(columns))]
    rows = [[str(k), "rel", *(f"{k + c / 100:.4f}" for c in range(columns))] for k in (1, 2)]
    return Table(headers, rows, "a title " * 20, "a note " * 30, index=2)


def test_wide_tables_split_into_blocks_that_repeat_the_row_labels():
    table = _wide()
    text = table.text(60)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 60
    headers = [line for line in lines if line.lstrip().startswith("k  ")]
    assert len(headers) > 1 and all("scale" in line for line in headers)
    for row in table.rows:  # every cell is shown once, the row labels once per block
        for cell in row[2:]:
            assert text.count(cell) == 1, cell
    assert text.count("model 11: error") == 1
    assert str(table) == table.text(WIDTH)


def test_narrow_tables_stay_one_block():
    table = Table(["k", "error"], [["2", "0.1000"], ["3", "0.2000"]], title="errors")
    assert table.text().splitlines() == ["errors", "k   error", "-" * 9, "2  0.1000", "3  0.2000"]


def test_html_has_every_cell_escaped():
    table = Table(["k", "a<b"], [["1", "x & y"]], title="t", notes="n")
    page = table.html()
    assert "<table>" in page and "a&lt;b" in page and "x &amp; y" in page
    assert "<caption>t</caption>" in page and "n</p>" in page


def test_bad_tables_are_clear_errors():
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 headers"):
        Table(["a", "b"], [["1"]])
    with pytest.raises(ValueError, match="index 3"):
        Table(["a", "b"], [["1", "2"]], index=3)


def test_results_print_within_the_page_and_render_as_html():
    theory = it.preset("unimodal", shape=(4,))
    true = theory.coefficients(order=4)
    scaled = it.PolynomialAction({k: 1.1 * true.coefficient(k) for k in range(1, 5)})
    comparison = it.compare(true, {"INN": scaled, "score matching": true})
    for text in (comparison.table(), str(comparison)):
        assert max(map(len, text.splitlines())) <= WIDTH
        assert "INN: error" in text and "score matching: error" in text
    assert comparison.table(200).count("\n") < comparison.table().count("\n")
    assert "<td" in comparison._repr_html_()
    x = torch.randn(2000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cumulants = it.compare_cumulants(x, x.flip(0), order=3)
    assert max(map(len, cumulants.table().splitlines())) <= WIDTH
    assert "max |diff|/sigma" in cumulants._repr_html_()


def test_ipython_shows_the_table_as_text():
    from IPython.lib.pretty import pretty

    theory = it.preset("unimodal", shape=(4,))
    true = theory.coefficients(order=4)
    comparison = it.compare(true, {"INN": true})
    assert pretty(comparison) == comparison.table()
    table = Table(["k"], [["1"]])
    assert pretty(table) == repr(table) == table.text()
