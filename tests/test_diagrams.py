"""Tests of the diagram catalogue (weights, placements) and its drawing."""

from __future__ import annotations

import math
from fractions import Fraction

import matplotlib
import pytest
import sympy as sp

from inntheory.extraction.diagrams import Diagram, catalogue, draw_diagrams
from inntheory.model.activations import CubicActivation, QuadraticActivation

matplotlib.use("Agg")


def _one_dimensional(degree: int, n: int, k: int, m, q, t):
    """Sum over the catalogue of weight * m^j1 q^j2 t^j3 for the k-vertex feeding order n."""
    return sum(
        d.weight * m**d.straight * q**d.forked2 * t**d.forked3
        for d in catalogue(degree, n)
        if d.order == n and d.vertex == k and not d.logdet
    )


@pytest.mark.parametrize("degree", [2, 3])
def test_weights_reproduce_one_dimensional_rules(degree):
    m, q, t = sp.symbols("m q t")
    t_value = t if degree == 3 else 0
    # the quoted 1-D check: u = m d + q d^2/2 + t d^3/6 under S = A2 u^2/2 gives B4
    assert sp.expand(_one_dimensional(degree, 4, 2, m, q, t)) == sp.expand(
        4 * m * t_value + 3 * q**2
    )
    # in general the k-vertex feeds order n with the partial Bell polynomial B_{n,k}
    for n in range(1, 7):
        for k in range(1, n + 1):
            derivatives = [m, q, t_value] + [0] * n
            expected = sp.bell(n, k, derivatives[: n - k + 1])
            assert sp.expand(_one_dimensional(degree, n, k, m, q, t) - expected) == 0


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_catalogue_structure(degree):
    diagrams = catalogue(degree, 6)
    for d in diagrams:
        assert isinstance(d.weight, Fraction)
        if d.logdet:
            assert d.weight == math.factorial(d.order) and d.vertex == d.order
            continue
        assert d.straight + d.forked2 + d.forked3 == d.vertex
        assert d.straight + 2 * d.forked2 + 3 * d.forked3 == d.order
        assert max(d.legs) <= degree
        expected = Fraction(math.factorial(d.order), math.factorial(d.vertex)) * Fraction(
            math.factorial(d.vertex),
            math.factorial(d.straight) * math.factorial(d.forked2) * math.factorial(d.forked3),
        ) * Fraction(1, 2) ** d.forked2 * Fraction(1, 6) ** d.forked3
        assert d.weight == expected
    assert any(d.logdet for d in diagrams) == (degree >= 2)
    orders = [d.order for d in diagrams]
    assert orders == sorted(orders) and set(orders) == set(range(1, 7))


@pytest.mark.parametrize("degree", [2, 3])
def test_placements_are_the_distinct_set_partitions(degree):
    for d in catalogue(degree, 6):
        placements = d.placements
        assert len(set(placements)) == len(placements)
        for blocks in placements:
            assert sorted(p for block in blocks for p in block) == list(range(d.order))
            if not d.logdet:
                assert tuple(len(block) for block in blocks) == d.legs
        if not d.logdet:
            # the mean over placements equals Sym over n! permutations: weight = count
            assert len(placements) == d.weight


def test_activation_forms_and_strings():
    by_name = catalogue("cubic", 4)
    assert by_name == catalogue(3, 4) == catalogue(CubicActivation(2), 4)
    assert catalogue("quadratic", 3) == catalogue(QuadraticActivation(1), 3)
    assert not any(d.forked3 for d in catalogue("quadratic", 6))
    texts = [str(d) for d in by_name if d.order == 4]
    assert "B^(4) += 4 Sym[A^(2): 1 phi', 1 phi'''-fork]" in texts
    assert "B^(4) += 24 diag[(-ln phi')_4]" in texts
    with pytest.raises(AttributeError):
        by_name[0].weight = Fraction(2)  # frozen


@pytest.mark.parametrize(
    ("activation", "order", "error"),
    [("softplus", 3, ValueError), (4, 3, ValueError), (0, 3, ValueError), (2.5, 3, TypeError),
     ("cubic", 0, ValueError), ("cubic", 2.0, ValueError), ("cubic", True, ValueError)],
)
def test_catalogue_errors(activation, order, error):
    with pytest.raises(error):
        catalogue(activation, order)


def test_draw_diagrams():
    figure = draw_diagrams("cubic", 4)
    assert len(figure.axes) == 4
    diagrams = catalogue("cubic", 4)
    titles = [t.get_text() for ax in figure.axes for t in ax.texts if t.get_text().startswith("w")]
    assert sorted(titles) == sorted(f"weight {d.weight}" for d in diagrams)
    import matplotlib.pyplot as plt

    figure2, ax = plt.subplots()
    assert draw_diagrams("quadratic", 4, n=3, ax=ax) is figure2
    assert sum(t.get_text().startswith("weight") for t in ax.texts) == sum(
        d.order == 3 for d in catalogue("quadratic", 4)
    )
    with pytest.raises(ValueError, match="n="):
        draw_diagrams("quadratic", 4, ax=ax)
    with pytest.raises(ValueError, match="n must be"):
        draw_diagrams("quadratic", 4, n=5)
    plt.close("all")


def test_diagram_is_small_and_readable():
    d = Diagram(3, 2, 1, 1, 0, False, Fraction(3))
    assert str(d) == "B^(3) += 3 Sym[A^(2): 1 phi', 1 phi''-fork]"
    assert d.legs == (1, 2)
    assert set(d.placements) == {((0,), (1, 2)), ((1,), (0, 2)), ((2,), (0, 1))}
