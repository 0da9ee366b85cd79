"""Results do not change when the code is reorganised: the end-to-end cases of
`tests/regression/cases.py` (sampling, training with and without the polish, extraction dense
and compressed, score matching) against `tests/regression/reference.npz`, written by the code
before the reorganisation.

On the machine that wrote the reference the results are bit-identical; elsewhere a different
BLAS or CPU may round differently, so the comparison allows 1e-9 relative (the short fits
amplify a last-bit difference by far less than that)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_CASES = Path(__file__).parent / "regression" / "cases.py"


def _load_cases():
    spec = importlib.util.spec_from_file_location("regression_cases", _CASES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
reference = np.load(cases.REFERENCE)


@pytest.mark.parametrize("case", cases.CASES, ids=lambda case: case.__name__)
def test_results_unchanged(case):
    import torch

    torch.set_num_threads(1)
    result = case()
    expected = sorted(key for key in reference.files if key.startswith(f"{case.__name__}/"))
    assert sorted(result) == expected
    for key in expected:
        np.testing.assert_allclose(result[key], reference[key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)
