"""The factored solver evaluating its factor directly: this tree against an older revision.

Run from the repository root (the faces need ``CONVEXMETRIC_DATA``):

    CONVEXMETRIC_DATA=../shared/data python benchmarks/factored_embed.py --against REF \\
        > benchmarks/factored_embed.txt

Each L-BFGS evaluation of ``factored`` now hands the problem ``L`` itself
(``LMNNProblem.embed_factor``) instead of ``M = L^T L``, which the problem had to factor
again by an eigendecomposition (``d^3``). Each case is ``solve(p, "factored", ...)`` in a
fresh process (problem construction not timed, the library's BLAS threads), on this tree
and on ``REF`` alternately, ``--repeats`` times; the table gives the best wall time of
each, their ratio, and both objectives (the same path up to round-off, see the note under the table).
"""
from __future__ import annotations


from against import against_parser, best_of_trees, head, header, worktree

CASES = [("faces-span", 200, 0), ("faces-span", 200, 1e-14), ("wide-span", 500, 0), ("digits", 200, 0),
         ("synthetic", 100, 0)]

CHILD = """
import json, os, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from convexmetric import LMNNProblem, solve
from convexmetric.span import DataSpan
name, max_iter, eps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if name == "faces-span":        # Olivetti's 400 raw 64 x 64 faces, in their 399-dimensional span
    from convexmetric.repro import load_raw
    X, y = load_raw("ofaces", home=os.environ["CONVEXMETRIC_DATA"])
    X = DataSpan.of(X).coordinates(X)
elif name == "wide-span":       # 300 x 3000, a class signal in 20 features, in its 299-dimensional span
    rng = np.random.default_rng(0)
    y = np.arange(300) % 10
    X = rng.standard_normal((300, 3000))
    X[:, :20] += 1.5 * rng.standard_normal((10, 20))[y]
    X = DataSpan.of(X).coordinates(X)
elif name == "digits":          # scikit-learn digits, standardised (constant pixels kept at 0)
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
else:
    from convexmetric.datasets import make_synthetic
    X, y = make_synthetic(n=2000, d=50, n_classes=10, seed=0)
p = LMNNProblem(X, y)
init = "identity"
if eps:                         # the default start (the identity at its best multiple), perturbed
    from convexmetric.solvers.first_order import best_multiple
    L0 = np.sqrt(best_multiple(p, np.eye(p.d))) * np.eye(p.d)
    init = L0 * (1 + eps * np.random.default_rng(0).standard_normal(L0.shape))
t = time.perf_counter()
r = solve(p, "factored", max_iter=max_iter, tol=1e-3, init=init)
print(json.dumps(dict(wall=time.perf_counter() - t, fun=r.fun, nit=r.nit, gap=r.relative_gap, n=p.n, d=p.d)))
"""


def main():
    args = against_parser(__doc__, repeats=2).parse_args()
    print(header("factored_embed.py", ["--against", args.against]) + f"; this tree: {head()}\n")
    print(f"| problem | n x d | max_iter | {args.against} s | this tree s | ratio | iterations | objectives "
          f"({args.against} / this tree) | certified rel. gap |")
    print("|---" * 9 + "|")
    results = {}
    with worktree(args.against) as other:
        for case in CASES:
            old, new = best_of_trees(other, CHILD, case, args.repeats)
            results[case] = {"old": old, "new": new}
            name = case[0] + (f", start perturbed {case[2]:g}" if case[2] else "")
            print(f"| {name} | {new['n']} x {new['d']} | {case[1]} | {old['wall']:.2f} | {new['wall']:.2f} "
                  f"| {old['wall'] / new['wall']:.2f}x | {old['nit']} / {new['nit']} | {old['fun']:.8g} / "
                  f"{new['fun']:.8g} | {old['gap']:.2g} / {new['gap']:.2g} |", flush=True)
    print("\n*ratio*: the old tree's best wall time over this tree's.")
    f = {(c[2], k): v["fun"] for c, res in results.items() if c[0] == "faces-span" for k, v in res.items()}
    if len(f) == 4:
        print(f"\nThe faces have more pixels than images, so their optimal objective is 0, and L-BFGS's path "
              f"there is sensitive to round-off: perturbing the initial factor by 1e-14 (relative) moves the "
              f"objective after 200 iterations from {f[0, 'new']:.4g} to {f[1e-14, 'new']:.4g} on this tree "
              f"and from {f[0, 'old']:.4g} to {f[1e-14, 'old']:.4g} on {args.against}. Compare times there, "
              "not objectives.")


if __name__ == "__main__":
    main()
