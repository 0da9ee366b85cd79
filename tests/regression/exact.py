"""Print whether the regression cases reproduce reference.npz bit for bit (run from the root).

The test (tests/test_regression.py) allows for another BLAS's rounding; this script checks
the stronger property on the machine that wrote the reference.
"""

import importlib.util
from pathlib import Path

import numpy as np

spec = importlib.util.spec_from_file_location("cases", Path(__file__).with_name("cases.py"))
cases = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cases)
reference = np.load(cases.REFERENCE)
results = cases.compute_all()
different = [key for key in reference.files
             if not np.array_equal(reference[key], results.get(key))]
new = sorted(set(results) - set(reference.files))
if different or new:
    print(f"DIFFERENT: {different[:10]}, new keys {new[:5]}")
else:
    print("bit-identical")
