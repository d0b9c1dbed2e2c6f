"""Solvers that take many subsets of a triplet set: this tree against an older revision.

Run from the repository root:

    python benchmarks/subset_pairs.py --against REF --repeats 4 > benchmarks/subset_pairs.txt

The stochastic solver takes a minibatch subset of the triplets and then its active part at
every iteration, and the certificates take subsets too. Each subset needs the table of its
unique point pairs; ``TripletSet.subset`` now relabels its parent's table instead of sorting
the pairs again. Each case runs ``--repeats`` times in a fresh process on one BLAS thread, on
this tree and on ``REF`` alternately; the table gives the best wall time of each, their
ratio, and the objective and iteration count of both (which must agree).
"""
from __future__ import annotations

from against import against_parser, case_table

CASES = [("iris", "stochastic"), ("wine", "stochastic"), ("wine", "hybrid"), ("wine", "subgradient")]

CHILD = """
import json, os, sys, time
os.environ["CONVEXMETRIC_NO_FORK"] = "1"       # time the solver, not a backend child's start
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler
from convexmetric import LMNNProblem, solve
name, solver = sys.argv[1], sys.argv[2]
X, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
p = LMNNProblem(StandardScaler().fit_transform(X), y, k=3)
t = time.perf_counter()
r = solve(p, solver, seed=0) if solver == "stochastic" else solve(p, solver)
print(json.dumps(dict(wall=time.perf_counter() - t, fun=r.fun, nit=r.nit, gap=r.relative_gap, status=r.status)))
"""


def main():
    args = against_parser(__doc__, repeats=2).parse_args()

    def cells(case, old, new):
        same = abs(old["fun"] - new["fun"]) <= 1e-9 * abs(old["fun"])
        return [*case, f"{old['wall']:.2f}", f"{new['wall']:.2f}", f"{old['wall'] / new['wall']:.2f}x",
                f"{new['fun']:.6f} ({'same' if same else 'old: %.6f' % old['fun']})",
                f"{new['nit']}{'' if old['nit'] == new['nit'] else ' (old: %d)' % old['nit']}",
                f"{new['gap']:.1e} ({new['status']})"]

    case_table("subset_pairs", args, ["data", "solver", f"{args.against} s", "this tree s", "ratio", "objective",
                                      "iterations", "certified gap"], CASES, CHILD, cells)
    print("\n*ratio*: the old tree's best wall time over this tree's.")


if __name__ == "__main__":
    main()
