"""3-NN with the paper's tie rule: this tree against an older revision.

Run from the repository root (Letters needs ``CONVEXMETRIC_DATA``):

    python benchmarks/knn_ties.py --against REF > benchmarks/knn_ties.txt

``knn_error`` orders neighbours by distance, then training index; rows where a tie crosses
the k-th place are sorted. Each case runs ``--repeats`` times in a fresh process on one BLAS
thread, on this tree and on ``REF`` alternately; the table gives the best wall time of each,
their ratio and both errors (which must agree).
"""
from __future__ import annotations

from against import against_parser, case_table

CASES = [("letters", 3), ("letters", 1), ("integers", 3), ("gaussian", 3)]

CHILD = """
import json, sys, time
import numpy as np
from convexmetric.classify import knn_error
name, k = sys.argv[1], int(sys.argv[2])
if name == "letters":       # load_letter's 14 000 / 6 000 split, integer features 0..15
    from convexmetric.datasets import load_letter
    Xtr, ytr, Xte, yte = load_letter()
else:                       # 14 000 x 16 against 6 000; integers 0..4 tie across the k-th place often
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (20000, 16)).astype(float) if name == "integers" else rng.normal(size=(20000, 16))
    y = rng.integers(0, 26, 20000)
    Xtr, ytr, Xte, yte = X[:14000], y[:14000], X[14000:], y[14000:]
t = time.perf_counter()
e = knn_error(Xtr, ytr, Xte, yte, k=k)
print(json.dumps(dict(wall=time.perf_counter() - t, error=e, n_train=len(ytr), n_test=len(yte))))
"""


def main():
    args = against_parser(__doc__, repeats=3).parse_args()

    def cells(case, old, new):
        assert old["error"] == new["error"], (case, old, new)
        return [case[0], str(case[1]), f"{new['n_train']} x {new['n_test']}", f"{old['wall']:.2f}",
                f"{new['wall']:.2f}", f"{old['wall'] / new['wall']:.2f}x", f"{new['error']:.4f} (same)"]

    case_table("knn_ties", args, ["data", "k", "train x test", f"{args.against} s", "this tree s", "ratio", "errors"],
               CASES, CHILD, cells)
    print("\n*ratio*: the old tree's best wall time over this tree's.")


if __name__ == "__main__":
    main()
