"""Evidence for the two Table 1 rows that differ from the paper by more than 1.5 points.

Run: ``CONVEXMETRIC_DATA=../shared/data python paper_repro/explain_differences.py > paper_repro/results/differences.md``

* **bal, LMNN** (ours 18 %, paper 11 %). The features are integers 1..5, so most points have
  several same-class neighbours at exactly the same distance and the Euclidean target
  neighbours are arbitrary. The script counts the points whose 3rd and 4th same-class
  distances tie, re-solves with the ties broken at random instead of by index, and follows the
  test error along a subgradient run and for the factored (non-convex, identity start) solver.
* **wine, LMNN** (ours 3.7 %, paper 8.7 %). We solve in standardised coordinates with the
  raw-space targets, an exact reparametrisation. The script solves the raw-coordinate problem
  exactly (same optimum, same errors) and with a time-limited first-order run that stops far
  from the optimum, as an uncertified solver on raw features would.
* **MNIST, the kNN baselines** (``mnist`` section). Table 1's protocol deskews the images
  before PCA to 164 dimensions. The script measures kNN Euclidean, kNN PCA (164) and kNN LDA
  on the raw and on the deskewed images, to show how much of each row's difference from the
  paper the deskewing accounts for.

Sections can be chosen: ``python paper_repro/explain_differences.py mnist`` (default: all).
"""
import numpy as np

from convexmetric import LMNNProblem, solve
from convexmetric.classify import knn_error
from convexmetric.neighbors import select_targets
from convexmetric.repro import PROTOCOLS, SplitData, load_raw, make_split

SPLITS = 5


def split_data(name):
    """``(split, SplitData)`` for the first :data:`SPLITS` splits of the repro protocol."""
    proto = PROTOCOLS[name]
    raw = load_raw(name)
    for split in range(SPLITS):
        yield split, SplitData(proto, *make_split(proto, raw, split, 0, False))


def bal_rows():
    print("## bal: LMNN test error (%) and target-neighbour ties\n")
    print("| split | points with a tie at the 3rd target | LMNN (ties by index, certified optimum) "
          "| LMNN, ties broken at random (3 draws) | subgradient path, min-max | factored from identity |")
    print("|---|---|---|---|---|---|")
    for split, data in split_data("bal"):
        (Xtr, Xte), ytr, yte = data.std, data.ytr, data.yte
        Xr = data.pca[0]
        lab = np.unique(ytr, return_inverse=True)[1]
        D = ((Xr[:, None, :] - Xr[None, :, :]) ** 2).sum(2)
        D[lab[:, None] != lab[None, :]] = np.inf
        np.fill_diagonal(D, np.inf)
        Ds = np.sort(D, axis=1)
        ties = int(np.sum(Ds[:, 2] == Ds[:, 3]))
        p = data.problem()
        opt = solve(p, "hybrid")
        base = 100 * knn_error(Xtr, ytr, Xte, yte, opt.M)
        rng = np.random.default_rng(split)
        rand = []
        for _ in range(3):
            perm = rng.permutation(len(Xr))
            t = select_targets(Xr[perm], lab[perm], 3)
            inv = np.empty_like(perm)
            inv[perm] = np.arange(len(perm))
            targets = np.where(t >= 0, perm[np.maximum(t, 0)], -1)[inv]
            q = LMNNProblem(Xtr, ytr, targets=targets)
            rand.append(100 * knn_error(Xtr, ytr, Xte, yte, solve(q, "hybrid").M))
        path = []
        solve(p, "subgradient", max_iter=2000,
              callback=lambda info: path.append(100 * knn_error(Xtr, ytr, Xte, yte, info["M"])) and False)
        fac = solve(p, "factored", init="identity")
        print(f"| {split} | {ties} / {len(Xr)} | {base:.1f} | {', '.join(f'{e:.1f}' for e in rand)} "
              f"| {min(path):.1f}-{max(path):.1f} | {100 * knn_error(Xtr, ytr, Xte, yte, fac.M):.1f} |",
              flush=True)


def wine_rows():
    print("\n## wine: LMNN in raw coordinates\n")
    print("| split | standardised, exact | raw, exact (hybrid) | raw, first-order stopped at 10 s "
          "(certified gap) |")
    print("|---|---|---|---|")
    for split, data in split_data("wine"):
        (Xs, Xse), ytr, yte = data.std, data.ytr, data.yte
        (Xr, Xre) = data.raw
        std = solve(data.problem(), "hybrid")
        p_raw = LMNNProblem(Xr, ytr, targets=data.problem().targets)
        exact = solve(p_raw, "hybrid")
        short = solve(p_raw, "fista", time_limit=10)
        print(f"| {split} | {100 * knn_error(Xs, ytr, Xse, yte, std.M):.1f} "
              f"| {100 * knn_error(Xr, ytr, Xre, yte, exact.M):.1f} "
              f"| {100 * knn_error(Xr, ytr, Xre, yte, short.M):.1f} ({short.relative_gap:.1e}) |", flush=True)


def mnist_rows():
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from convexmetric import datasets as D
    print("\n## MNIST: kNN baselines (3-NN test error, %) on raw and deskewed images\n")
    print("| images | kNN Euclidean | kNN PCA (164) | kNN LDA (9) |")
    print("|---|---|---|---|")
    tr, ytr, te, yte = D.load_mnist()
    for name, (a, b) in (("raw", (tr, te)), ("deskewed (Table 1's protocol)", (D.deskew(tr), D.deskew(te)))):
        Xtr, Xte = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
        pca = PCA(164, random_state=0).fit(Xtr)
        Ptr, Pte = pca.transform(Xtr), pca.transform(Xte)
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=1e-4).fit(Ptr, ytr)
        print(f"| {name} | {100 * knn_error(Xtr, ytr, Xte, yte):.2f} | {100 * knn_error(Ptr, ytr, Pte, yte):.2f} "
              f"| {100 * knn_error(lda.transform(Ptr), ytr, lda.transform(Pte), yte):.2f} |", flush=True)


SECTIONS = {"bal": bal_rows, "wine": wine_rows, "mnist": mnist_rows}

if __name__ == "__main__":
    import sys
    import warnings
    warnings.filterwarnings("ignore")
    for name in sys.argv[1:] or list(SECTIONS):
        SECTIONS[name]()
