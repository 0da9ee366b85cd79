# Bit-identity check against tests/regression/reference.npz (run from a checkout root).
import importlib.util, sys, numpy as np
spec = importlib.util.spec_from_file_location("c", "tests/regression/cases.py"); c = importlib.util.module_from_spec(spec); spec.loader.exec_module(c)
ref = np.load(c.REFERENCE); res = c.compute_all(); bad = [k for k in ref.files if not np.array_equal(ref[k], res.get(k))]
print("bit-identical" if not bad and sorted(res) == sorted(ref.files) else f"DIFFERENT: {bad[:10]} extra={sorted(set(res)-set(ref.files))[:5]}")
