"""3-NN with the paper's tie rule: this tree against an older revision.

Run from the repository root (Letters needs ``CONVEXMETRIC_DATA``):

    python benchmarks/knn_ties.py --against REF > benchmarks/knn_ties.txt

``knn_error`` orders neighbours by distance, then training index; rows where a tie crosses
the k-th place are sorted. Each case runs ``--repeats`` times in a fresh process on one BLAS
thread, on this tree and on ``REF`` alternately; the table gives the best wall time of each,
their ratio and both errors (which must agree).
"""
from __future__ import annotations

import os
import platform

from against import against_parser, ONE_THREAD, best_of_trees, head, worktree

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
    print(f"# knn_ties, {platform.platform()}, {os.cpu_count()} CPUs, one BLAS thread; this tree: {head()} "
          "(+ working changes)")
    print(f"# command: python benchmarks/knn_ties.py --against {args.against}\n")
    print(f"| data | k | train x test | {args.against} s | this tree s | ratio | errors |")
    print("|---" * 7 + "|")
    with worktree(args.against) as other:
        for case in CASES:
            old, new = best_of_trees(other, CHILD, case, args.repeats, ONE_THREAD)
            assert old["error"] == new["error"], (case, old, new)
            print(f"| {case[0]} | {case[1]} | {new['n_train']} x {new['n_test']} | {old['wall']:.2f} "
                  f"| {new['wall']:.2f} | {old['wall'] / new['wall']:.2f}x | {new['error']:.4f} (same) |", flush=True)
    print("\n*ratio*: the old tree's best wall time over this tree's.")


if __name__ == "__main__":
    main()
