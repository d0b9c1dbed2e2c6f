"""Bounds on problems whose optimum is 0: this tree against an older revision.

Run from the repository root (the faces need ``CONVEXMETRIC_DATA``):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/zero_optimum_bound.py --against REF \\
        > benchmarks/zero_optimum_bound.txt

With fewer rows than features the optimal objective is 0, and the problem finds a metric
attaining it when it is built (``zero_objective_metric``). Its lower bounds then skip the
bisection over ``d x d`` eigenvalue problems that a singular pull matrix otherwise needs:
no dual point can bound the optimum above 0. Each case is ``solve(p)`` (``auto``, which picks
``factored`` with an iteration budget) on the problem in its span's coordinates, as
``LMNN().fit`` builds it, in a fresh process on this tree and on ``REF`` alternately,
``--repeats`` times; the table gives the best wall time of each, their ratio, the
iterations and the certified bounds (0 both ways).
"""
from __future__ import annotations


from against import against_parser, best_of_trees, head, header, worktree

CASES = ["faces", "faces-pooled", "wide"]

CHILD = """
import json, os, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from convexmetric import LMNNProblem, solve
from convexmetric.span import DataSpan
name = sys.argv[1]
if name.startswith("faces"):    # Olivetti's 400 raw faces, 64 x 64 or pooled to 32 x 32
    from convexmetric.repro import load_raw
    X, y = load_raw("ofaces", home=os.environ["CONVEXMETRIC_DATA"])
    if name == "faces-pooled":
        X = X.reshape(-1, 32, 2, 32, 2).mean(axis=(2, 4)).reshape(len(X), -1)
else:                           # 300 x 3000, a class signal in 20 features
    rng = np.random.default_rng(0)
    y = np.arange(300) % 10
    X = rng.standard_normal((300, 3000))
    X[:, :20] += 1.5 * rng.standard_normal((10, 20))[y]
X = DataSpan.of(X).coordinates(X)
p = LMNNProblem(X, y)
t = time.perf_counter()
r = solve(p)
print(json.dumps(dict(wall=time.perf_counter() - t, fun=r.fun, lb=r.lower_bound, nit=r.nit, solver=r.solver,
                      status=r.status, zero=p.zero_objective_metric() is not None, n=p.n, d=p.d)))
"""


def main():
    args = against_parser(__doc__, repeats=2).parse_args()
    print(header("zero_optimum_bound.py", ["--against", args.against]) + f"; this tree: {head()}\n")
    print(f"| problem | n x d (span) | optimum 0 found | solver | {args.against} s | this tree s | ratio "
          f"| iterations | status | lower bounds |")
    print("|---" * 10 + "|")
    with worktree(args.against) as other:
        for case in CASES:
            old, new = best_of_trees(other, CHILD, [case], args.repeats)
            print(f"| {case} | {new['n']} x {new['d']} | {new['zero']} | {new['solver']} | {old['wall']:.2f} "
                  f"| {new['wall']:.2f} | {old['wall'] / new['wall']:.2f}x | {old['nit']} / {new['nit']} "
                  f"| {old['status']} / {new['status']} | {old['lb']:g} / {new['lb']:g} |", flush=True)
    print("\n*ratio*: the old tree's best wall time over this tree's. Iterations and status may differ: "
          "on these problems L-BFGS's path amplifies round-off (benchmarks/factored_embed.txt).")


if __name__ == "__main__":
    main()
