"""Cholesky before eigendecompositions, in embeddings and projections: this tree against an older revision.

Run from the repository root (oFaces and Isolet need ``CONVEXMETRIC_DATA``):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/psd_factor.py --against REF \\
        > benchmarks/psd_factor.txt

Every evaluation factors its metric as ``L^T L`` (``LMNNProblem.embed``). A profile of
oFaces' multi-metric solve (split 0 of the table's protocol: 40 metrics of 200 x 200) put
20 of its 34 s there, one eigendecomposition per class metric per evaluation, and Isolet's
single metric (172 x 172) 42 of 241 s. ``psd.psd_factor`` now tries a Cholesky factor first
(about half of oFaces' class metrics along that solve were positive definite) and falls
back to the eigendecomposition. After that change the projection onto the PSD cone was a
quarter of the oFaces run; ``psd.project_psd`` now returns a matrix with a Cholesky factor
as it is. The zero-optimum search at construction now hands its projector's factor to the
distances and the objective (*faces-construct*). With ``--against 18321be`` the table
measures all three changes. Each case runs in a fresh process on this tree and on ``REF``
alternately, ``--repeats`` times, with a fixed amount of work (the library's BLAS threads;
problem construction is timed only in *faces-construct*); the table gives the best wall
time of each, their ratio, and both results, which agree up to round-off.
"""
from __future__ import annotations

from against import against_parser, best_of_trees, head, header, worktree

CASES = [("ofaces-multi", 60), ("isolet", 40), ("faces-raw", 2), ("faces-construct", 1), ("synthetic", 200)]

CHILD = """
import json, os, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from convexmetric import LMNNProblem, solve
name, work = sys.argv[1], int(sys.argv[2])
home = os.environ["CONVEXMETRIC_DATA"]
if name in ("ofaces-multi", "isolet"):   # split 0 of the table's protocol, its LMNN problem
    from convexmetric.repro import PROTOCOLS, SplitData, load_raw, make_split
    proto = PROTOCOLS[name.split("-")[0]]
    data = SplitData(proto, *make_split(proto, load_raw(proto.name, home=home), 0, 0, False), seed=0)
    p = data.problem(multi=name.endswith("multi"))
elif name.startswith("faces-"):          # Olivetti's 400 raw 64 x 64 faces, 4 096 pixels
    from convexmetric.repro import load_raw
    X, y = load_raw("ofaces", home=home)
    t = time.perf_counter()
    p = LMNNProblem(X, y)
    built = time.perf_counter() - t
else:
    from convexmetric.datasets import make_synthetic
    X, y = make_synthetic(n=2000, d=50, n_classes=10, seed=0)
    p = LMNNProblem(X, y)
t = time.perf_counter()
if name == "faces-construct":            # the construction itself (its zero-optimum search)
    out = dict(fun=p.objective(np.eye(p.d)), nit=1, gap=float("nan"))
elif name == "faces-raw":                # objective and subgradient at the identity and a dense PD metric
    A = np.random.default_rng(0).standard_normal((p.d, p.d)) / np.sqrt(p.d)
    for M in (np.eye(p.d), A @ A.T + 0.1 * np.eye(p.d))[:work]:
        fun, _ = p.objective_and_subgradient(M)
    out = dict(fun=fun, nit=work, gap=float("nan"))
else:
    r = solve(p, "fista", max_iter=work, tol=1e-12)
    out = dict(fun=r.fun, nit=r.nit, gap=r.relative_gap)
wall = built if name == "faces-construct" else time.perf_counter() - t
print(json.dumps(dict(wall=wall, n=p.n, d=p.d, **out)))
"""


def main():
    args = against_parser(__doc__, repeats=2).parse_args()
    print(header("psd_factor.py", ["--against", args.against]) + f"; this tree: {head()}\n")
    print(f"| problem | n x d | work | {args.against} s | this tree s | ratio | objectives "
          f"({args.against} / this tree) | certified rel. gap |")
    print("|---" * 8 + "|")
    with worktree(args.against) as other:
        for case in CASES:
            old, new = best_of_trees(other, CHILD, case, args.repeats)
            work = {"faces-raw": "2 evaluations", "faces-construct": "construction"}.get(
                case[0], f"{case[1]} FISTA iterations")
            print(f"| {case[0]} | {new['n']} x {new['d']} | {work} | {old['wall']:.2f} | {new['wall']:.2f} "
                  f"| {old['wall'] / new['wall']:.2f}x | {old['fun']:.10g} / {new['fun']:.10g} "
                  f"| {old['gap']:.2g} / {new['gap']:.2g} |", flush=True)
    print("\n*ratio*: the old tree's best wall time over this tree's. *faces-raw*: the objective and "
          "subgradient at the identity and at a dense positive definite metric (4 096 x 4 096). "
          "*faces-construct*: `LMNNProblem(X, y)` on the raw faces, whose zero-optimum search factors "
          "the projector on the directions the pull matrix leaves free (objective: at the identity).")


if __name__ == "__main__":
    main()
