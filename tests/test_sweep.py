"""The blockwise pass equals the plain-loop reference, in every form it takes.

Forms: block sizes from one anchor to the whole set, float32 and float64 products, one
and two worker threads, exact hinge and Huber smoothing, bands, working sets of pairs,
one metric per class (candidates of one class), anchor subsets, scale profiles, and the
dense array-API form (array-api-strict, the strict reference namespace, on the CPU).
"""
import numpy as np
import pytest

from convexmetric import LMNNProblem, MultiMetricProblem, solve
from convexmetric.sweep import PairSet, sweep

from conftest import random_problem_data, random_psd
from reference import ref_margins, ref_objective_and_subgradient, ref_triplets


def setup(seed, n=40, d=3, classes=3):
    X, y = random_problem_data(seed, n=n, d=d, classes=classes, ties=seed % 2 == 0, duplicates=seed % 3 == 0)
    p = LMNNProblem(X, y, triplets="all")
    rng = np.random.default_rng(seed)
    M = random_psd(rng, d) * rng.uniform(0.3, 3)
    emb = p.embed(M)
    t = np.where(p.targets >= 0, p.target_sq_dists(M), -np.inf)
    trip = ref_triplets(p.labels, p.targets)
    z = ref_margins(p.X, M, trip, p.margin)
    return p, M, emb, t, trip, z


def reference(p, trip, z, gamma):
    """Loss, hinge and ``sum_t h'(z_t) A_t`` by loops over the listed triplets."""
    zp = np.maximum(z, 0)
    if gamma > 0:
        loss = np.sum(np.where(zp > gamma, zp - gamma / 2, zp * zp / (2 * gamma)))
        w = np.clip(z / gamma, 0, 1)
    else:
        loss, w = zp.sum(), (z > 0).astype(float)
    K = np.zeros((p.d, p.d))
    for (i, j, l), wt in zip(trip, w):
        a, b = p.X[i] - p.X[j], p.X[i] - p.X[l]
        K += wt * (np.outer(a, a) - np.outer(b, b))
    return loss, zp.sum(), w, K


def impostor_part(p, res):
    """``sum_t h'(z_t) A_t`` from a pass: targets' Laplacian minus the impostor matrix."""
    from convexmetric.problem import _laplacian_product
    valid = p.targets >= 0
    return _laplacian_product(p.X, p._pull_a, p._pull_b, res.target_weights[valid]) - res.impostor_matrix


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma", [0.0, 0.25])
def test_pass_equals_plain_loops(seed, gamma):
    p, M, emb, t, trip, z = setup(seed)
    loss, hinge, w, K = reference(p, trip, z, gamma)
    keys_ref = np.sort([(i * p.n + j) * p.n + l for (i, j, l), zt in zip(trip, z) if zt > -0.5])
    for block in (1, 700, 10**8):
        for dtype in (np.float64, np.float32):
            for workers in (1, 2):
                res = sweep(emb.Z, t, p.labels, p.margin, X=p.X, gamma=gamma, slack=0.5, block_bytes=block,
                            search_dtype=dtype, workers=workers)
                assert res.loss == pytest.approx(loss, rel=1e-12, abs=1e-12)
                assert res.hinge == pytest.approx(hinge, rel=1e-12, abs=1e-12)
                assert res.n_active == int(np.sum(z > 0))
                assert res.weight_sum == pytest.approx(w.sum(), rel=1e-12, abs=1e-12)
                np.testing.assert_allclose(impostor_part(p, res), K, rtol=1e-10, atol=1e-10 * np.abs(K).max())
                a, s, l, zb = res.band
                keys = np.sort((a * p.n + p.targets[a, s]) * p.n + l)
                np.testing.assert_array_equal(keys, keys_ref)


@pytest.mark.parametrize("seed", range(3))
def test_problem_evaluations_match_the_loop_reference_through_the_pass(seed):
    p, M, emb, t, trip, z = setup(seed, n=50, d=4, classes=4)
    impl = LMNNProblem(p.X, p.y, triplets="implicit", block_bytes=4096)
    f_ref, G_ref = ref_objective_and_subgradient(p.X, p.targets, trip, M, p.mu, p.margin)
    f, G = impl.objective_and_subgradient(M)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(G, G_ref, rtol=1e-10, atol=1e-10 * np.abs(G_ref).max())
    fg, Gg, f2, _ = impl.smoothed_objective_and_gradient(M, 0.3)
    fg_e, Gg_e, f2_e, _ = p.smoothed_objective_and_gradient(M, 0.3)
    assert (fg, f2) == (pytest.approx(fg_e, rel=1e-12), pytest.approx(f2_e, rel=1e-12))
    np.testing.assert_allclose(Gg, Gg_e, rtol=1e-10, atol=1e-10 * np.abs(Gg_e).max())


@pytest.mark.parametrize("seed", range(3))
def test_working_sets_of_pairs(seed):
    p, M, emb, t, trip, z = setup(seed, n=50)
    for gamma in (0.0, 0.2):
        full = sweep(emb.Z, t, p.labels, p.margin, X=p.X, gamma=gamma, keep_pairs=0.0, block_bytes=700)
        assert isinstance(full.pairs, PairSet) and len(full.pairs) >= 1
        for workers in (1, 2):
            ws = sweep(emb.Z, t, p.labels, p.margin, X=p.X, gamma=gamma, pairs=full.pairs, workers=workers)
            assert ws.loss == pytest.approx(full.loss, rel=1e-12) and ws.n_active == full.n_active
            np.testing.assert_allclose(ws.impostor_matrix, full.impostor_matrix, rtol=1e-10, atol=1e-12)
        # a working set that misses pairs underestimates, never overestimates
        half = PairSet(full.pairs.anchor[::2], full.pairs.impostor[::2], full.pairs.order, 0.0)
        assert sweep(emb.Z, t, p.labels, p.margin, gamma=gamma, pairs=half).loss < full.loss
    with pytest.raises(ValueError, match="other labels"):
        sweep(emb.Z, t, np.roll(p.labels, 1), p.margin, pairs=full.pairs)


def test_working_set_over_its_cap_is_dropped_whatever_the_threads():
    """More pairs than ``max_pairs``: no working set, the count still exact; at the cap: the set."""
    xps = pytest.importorskip("array_api_strict")
    p, M, emb, t, trip, z = setup(4, n=60)
    full = sweep(emb.Z, t, p.labels, p.margin, keep_pairs=0.3, block_bytes=700)
    n_pairs = len(full.pairs)
    assert full.n_pairs == n_pairs > 4
    for workers in (1, 2):
        for cap in (n_pairs - 1, n_pairs // 3, 0):
            over = sweep(emb.Z, t, p.labels, p.margin, keep_pairs=0.3, block_bytes=700, workers=workers,
                         max_pairs=cap)
            assert over.pairs is None and over.n_pairs == n_pairs
            assert over.loss == pytest.approx(full.loss, rel=1e-12)
        at = sweep(emb.Z, t, p.labels, p.margin, keep_pairs=0.3, block_bytes=700, workers=workers,
                   max_pairs=n_pairs)
        np.testing.assert_array_equal(at.pairs.anchor, full.pairs.anchor)
    dense = sweep(emb.Z, t, p.labels, p.margin, keep_pairs=0.3, backend=xps, block_bytes=3000,
                  max_pairs=n_pairs - 1)
    assert dense.pairs is None and dense.n_pairs == n_pairs


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_a_pass_gives_the_same_bits_for_any_workers_and_thread_timing(monkeypatch, gamma):
    """Every number a pass returns is bitwise the same with 1, 2 or 3 workers, and when one
    worker is slowed down so that the blocks are shared out and finish in another order.
    (Huber weights are fractions, so their sums depend on the order of the additions.)"""
    import threading
    import time

    import convexmetric.sweep as sweep_module
    p, M, emb, t, trip, z = setup(5, n=240, d=4)
    kw = dict(X=p.X, gamma=gamma, slack=0.5, keep_pairs=0.5, block_bytes=4000, scales=np.geomspace(0.5, 2, 7))

    def fingerprint(res):
        parts = [res.loss, res.hinge, res.weight_sum, res.n_active, res.impostor_matrix, res.target_weights,
                 *res.band, res.pairs.anchor, res.pairs.impostor, *res.scale_profile[1:]]
        return [np.asarray(a).tobytes() for a in parts]

    expected = fingerprint(sweep(emb.Z, t, p.labels, p.margin, workers=1, **kw))
    assert expected == fingerprint(sweep(emb.Z, t, p.labels, p.margin, workers=1, **kw))
    chunk_terms = sweep_module._chunk_terms
    for slow_thread in (None, 0, 1):
        def chunk_terms_slowed(*args, slow_thread=slow_thread):
            if threading.current_thread().name.endswith(f"_{slow_thread}"):
                time.sleep(0.002)
            return chunk_terms(*args)
        monkeypatch.setattr(sweep_module, "_chunk_terms", chunk_terms_slowed)
        for workers in (2, 3):
            res = sweep(emb.Z, t, p.labels, p.margin, workers=workers, **kw)
            assert fingerprint(res) == expected, (slow_thread, workers)
    # the pass did see active triplets, and its sums are the triplets' exact ones
    assert res.n_active == int(np.count_nonzero(z > 0)) > 100
    loss, hinge, w, K = reference(p, trip, z, gamma)
    assert res.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(impostor_part(p, res), K, rtol=1e-10, atol=1e-10)


def test_one_metric_per_class_and_anchor_subsets():
    X, y = random_problem_data(5, n=45, d=3, classes=3)
    mm = MultiMetricProblem(X, y, triplets="all")
    impl = MultiMetricProblem(X, y, triplets="implicit", block_bytes=1500)
    rng = np.random.default_rng(5)
    Ms = np.stack([random_psd(rng, 3) for _ in range(3)])
    fe, Ge = mm.objective_and_subgradient(Ms)
    fi, Gi = impl.objective_and_subgradient(Ms)
    assert fi == pytest.approx(fe, rel=1e-12)
    np.testing.assert_allclose(Gi, Ge, rtol=1e-10, atol=1e-10 * np.abs(Ge).max())
    anchors = np.arange(0, 45, 3)
    a, b = mm.active_set(Ms, 0.2, anchors=anchors), impl.active_set(Ms, 0.2, anchors=anchors)
    np.testing.assert_array_equal(a.triplets.keys, b.triplets.keys)
    np.testing.assert_allclose(a.margins, b.margins, rtol=1e-12)


def test_scale_profile_gives_the_objective_along_multiples():
    from convexmetric.solvers.first_order import best_multiple, scale_profile
    p, M, emb, t, trip, z = setup(1, n=60, d=3)
    impl = LMNNProblem(p.X, p.y, triplets="implicit")
    grid = np.geomspace(0.05, 8, 40)
    prof = scale_profile(impl, M, grid)
    exact = np.array([impl.objective(s * M) for s in grid])
    np.testing.assert_allclose(prof, exact, rtol=1e-12)
    # the exact best multiple (enumerated windows) is no better than the profile's grid point
    c = best_multiple(p, M)
    assert p.objective(c * M) <= prof.min() + 1e-9 * prof.min()


def test_dense_array_api_form_equals_the_numpy_form():
    xps = pytest.importorskip("array_api_strict")
    for seed in range(3):
        p, M, emb, t, trip, z = setup(seed, n=45)
        for gamma in (0.0, 0.2):
            for block in (3000, 10**8):
                ref = sweep(emb.Z, t, p.labels, p.margin, X=p.X, gamma=gamma, slack=0.4, keep_pairs=0.1)
                den = sweep(emb.Z, t, p.labels, p.margin, X=p.X, gamma=gamma, slack=0.4, keep_pairs=0.1,
                            backend=xps, block_bytes=block)
                assert den.loss == pytest.approx(ref.loss, rel=1e-12) and den.n_active == ref.n_active
                assert den.hinge == pytest.approx(ref.hinge, rel=1e-12)
                np.testing.assert_allclose(den.impostor_matrix, ref.impostor_matrix, rtol=1e-10, atol=1e-10)
                np.testing.assert_allclose(den.target_weights, ref.target_weights, rtol=1e-12)
                kr = np.sort((ref.band[0] * p.n + ref.band[1]) * p.n + ref.band[2])
                kd = np.sort((den.band[0] * p.n + den.band[1]) * p.n + den.band[2])
                np.testing.assert_array_equal(kr, kd)
                np.testing.assert_array_equal(ref.pairs.anchor, den.pairs.anchor)
                np.testing.assert_array_equal(ref.pairs.impostor, den.pairs.impostor)


def test_array_api_problem_solves_like_numpy():
    """X given as array-api-strict arrays: the passes run in that namespace, the answers agree."""
    xps = pytest.importorskip("array_api_strict")
    X, y = random_problem_data(3, n=60, d=4, classes=3)
    p0 = LMNNProblem(X, y, triplets="implicit")
    p1 = LMNNProblem(xps.asarray(X), xps.asarray(y), triplets="implicit")
    assert p1.backend is not None and p0.backend is None
    r0, r1 = solve(p0, "fista", tol=1e-6), solve(p1, "fista", tol=1e-6)
    assert r1.fun == pytest.approx(r0.fun, rel=1e-10)
    assert r1.lower_bound == pytest.approx(r0.lower_bound, rel=1e-8)
    exact = solve(LMNNProblem(X, y, triplets="all"), "active-set", tol=1e-9)
    assert exact.lower_bound <= r1.fun and r1.lower_bound <= exact.fun * (1 + 1e-9)


def test_factored_on_working_sets_reaches_the_exact_optimum():
    X, y = random_problem_data(9, n=80, d=4, classes=3)
    p = LMNNProblem(X, y, triplets="implicit")
    exact = solve(LMNNProblem(X, y, triplets="all"), "active-set", tol=1e-9)
    r = solve(p, "factored", working_set=True, gamma=(1e-1, 1e-3), tol=1e-4, refresh=10)
    assert r.status == "optimal", r
    assert exact.fun <= r.fun <= exact.fun * (1 + 1e-4)
    assert r.lower_bound <= exact.fun * (1 + 1e-9)
    assert any(h.get("phase") == "full pass" for h in r.history)


def test_factored_without_room_for_a_working_set_keeps_to_full_passes(monkeypatch, caplog):
    """Too many pairs near the radius for a working set: full passes, the same optimum."""
    import logging

    from convexmetric import sweep as sweep_module
    X, y = random_problem_data(9, n=80, d=4, classes=3)
    exact = solve(LMNNProblem(X, y, triplets="all"), "active-set", tol=1e-9)
    monkeypatch.setattr(sweep_module, "MAX_KEPT_PAIRS", 5)
    with caplog.at_level(logging.INFO, logger="convexmetric"):
        r = solve(LMNNProblem(X, y, triplets="implicit"), "factored", working_set=True, gamma=(1e-1, 1e-3),
                  tol=1e-4, refresh=10, verbose=True)
    assert r.status == "optimal", r
    assert exact.fun <= r.fun <= exact.fun * (1 + 1e-4)
    assert r.lower_bound <= exact.fun * (1 + 1e-9)
    assert "more than a working set holds" in caplog.text
