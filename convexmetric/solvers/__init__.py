"""Solver registry and the single entry point :func:`solve`.

Each solver is registered by name with the module that defines it and the packages it
needs, so :func:`available_solvers` answers without importing any optional backend.
Registration order is preference order.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass

from .base import Solver, StopSolver

logger = logging.getLogger("convexmetric.solvers")


@dataclass(frozen=True)
class SolverEntry:
    """Where a solver lives and what it needs."""

    name: str
    module: str
    cls: str
    requires: tuple
    exact: bool
    description: str
    preset: tuple = ()  # options fixed by this registry name, as (key, value) pairs

    def is_available(self) -> bool:
        return all(importlib.util.find_spec(mod) is not None for mod in self.requires)

    def load(self):
        return getattr(importlib.import_module(self.module), self.cls)


REGISTRY: dict[str, SolverEntry] = {}


def register(entry: SolverEntry) -> None:
    """Add a solver to the registry (later entries are less preferred)."""
    if entry.name in REGISTRY:
        raise ValueError(f"solver {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry


for _entry in (
    SolverEntry("hybrid", "convexmetric.solvers.hybrid", "HybridSolver", ("cvxpy", "clarabel"), True,
                "accelerated smoothed warm start, then the exact active-set SDP"),
    SolverEntry("active-set", "convexmetric.solvers.active_set", "ActiveSetSDP", ("cvxpy", "clarabel"), True,
                "exact SDP on a growing working set of triplets (CLARABEL)"),
    SolverEntry("band-ipm", "convexmetric.solvers.band_ipm", "BandInteriorSolver", ("scipy",), True,
                "factored warm start, then a structured interior point on the margin band (d > 30)"),
    SolverEntry("sdp-clarabel", "convexmetric.solvers.sdp", "CvxpySDP", ("cvxpy", "clarabel"), True,
                "full SDP through CVXPY + CLARABEL", (("backend", "CLARABEL"),)),
    SolverEntry("sdp-scs", "convexmetric.solvers.sdp", "CvxpySDP", ("cvxpy", "scs"), True,
                "full SDP through CVXPY + SCS", (("backend", "SCS"),)),
    SolverEntry("sdp-mosek", "convexmetric.solvers.sdp", "CvxpySDP", ("cvxpy", "mosek"), True,
                "full SDP through CVXPY + MOSEK (needs a licence)", (("backend", "MOSEK"),)),
    SolverEntry("fista", "convexmetric.solvers.first_order", "AcceleratedSmoothed", ("numpy",), False,
                "accelerated projected gradient on a Huber-smoothed hinge, gamma continuation"),
    SolverEntry("subgradient", "convexmetric.solvers.first_order", "ProjectedSubgradient", ("numpy",), False,
                "Weinberger-Saul projected subgradient with an active set"),
    SolverEntry("stochastic", "convexmetric.solvers.first_order", "StochasticSubgradient", ("numpy",), False,
                "minibatch projected subgradient over anchor points, with iterate averaging"),
    SolverEntry("factored", "convexmetric.solvers.factored", "FactoredSolver", ("scipy",), False,
                "L-BFGS on L (M = L^T L): non-convex, for contrast, warm starts and low rank"),
):
    register(_entry)


def available_solvers(exact: bool | None = None) -> list[str]:
    """Names of the registered solvers whose packages are installed, in preference order."""
    return [e.name for e in REGISTRY.values()
            if e.is_available() and (exact is None or e.exact == exact)]


def get_solver(name: str, **options) -> Solver:
    """Instantiate a registered solver with options."""
    if name not in REGISTRY:
        raise ValueError(f"unknown solver {name!r}; registered: {list(REGISTRY)}")
    entry = REGISTRY[name]
    if not entry.is_available():
        raise ImportError(f"solver {name!r} needs the package(s) {entry.requires}; install them first")
    preset = dict(entry.preset)
    clash = set(preset) & set(options)
    if clash:
        raise TypeError(f"solver {name!r} fixes option(s) {sorted(clash)}")
    solver = entry.load()(**preset, **options)
    solver.name = name
    return solver


#: ``solver="auto"`` uses the exact hybrid up to this dimension (measured on n = 300,
#: T = 180 000: 0.4 s at d = 10, 5 s at d = 20, 16-21 s at d = 30, where band-ipm is faster).
AUTO_EXACT_MAX_DIM = 16

#: The certified relative gap ``solver="auto"`` aims for unless ``tol`` is given: fit for
#: classification (the kNN errors of metrics 1e-3 apart agree), and reached fast.
AUTO_TOL = 1e-3

#: Iteration budget ``auto`` gives a problem whose certificate is weak (singular pull matrix).
AUTO_WEAK_MAX_ITER = 500


def choose_solver_with_reason(problem) -> tuple[str, str]:
    """The solver ``"auto"`` picks for ``problem`` and a one-line reason.

    The rule, first match:

    1. one metric and a full pass of at least
       :data:`~convexmetric.solvers.factored.WORKING_SET_MIN_PASS_COST` multiply-adds
       (MNIST-sized: each full pass costs seconds): ``factored`` on
       working sets of impostor pairs (full MNIST: 1.4 % 3-NN error in about 3 minutes);
    2. ``d <= AUTO_EXACT_MAX_DIM``: the exact ``hybrid`` (Wine: 1 s to a gap of 1e-9);
    3. one metric whose pull matrix is definite on the data's span: ``band-ipm``, the
       factored first-order phase handing over to the margin-band interior point once
       its own certificate is close (digits: 1e-3 in under 2 s, 1e-4 in under 3 s);
    4. one metric, singular pull matrix: ``factored`` with an iteration budget
       (:data:`AUTO_WEAK_MAX_ITER`): strong duality may fail there, so the certified gap
       may stay large, and the reason says so;
    5. one metric per class: ``hybrid`` for listed triplets at ``d <= 32``, else ``fista``
       (rule 2 applies to them only with listed triplets).

    A solver whose packages are missing is skipped.

    Returns
    -------
    name : str
        A registry name.
    reason : str
        Why, in words, for logs, the command line and ``result.info["auto"]``.
    """
    names = available_solvers()
    d, limit = problem.d, AUTO_EXACT_MAX_DIM
    from .factored import WORKING_SET_MIN_PASS_COST, pass_cost
    one = problem.n_metrics == 1
    if one and pass_cost(problem) >= WORKING_SET_MIN_PASS_COST:
        return "factored", (f"n = {problem.n}, d = {d}, {problem.n_candidate_triplets:.3g} implicit triplets: every full pass costs "
                            "seconds, so L-BFGS on the factor L iterates on working sets of impostor pairs "
                            "between full passes (measured: full MNIST); its result is certified like any other")
    if "hybrid" in names and d <= limit and (one or problem.is_enumerated):
        return "hybrid", (f"d = {d} <= {limit}: the exact hybrid (a short FISTA warm start, then the "
                          "exact SDP on the few triplets near the margin) is fast at this size")
    if one and problem._pull_definite and "band-ipm" in names:
        why = (f"d = {d} > {limit}" if d > limit
               else f"d = {d}, but 'hybrid' needs cvxpy and clarabel, which are not installed")
        return "band-ipm", (f"{why}: L-BFGS on the factor until its own certificate is close, then the exact "
                            "margin-band interior point (a definite pull matrix makes it apply)")
    if one:
        return "factored", ("the target differences do not span the data (singular pull matrix): strong "
                            "duality may fail and certificates are weak there, so L-BFGS on the factor runs "
                            f"to an iteration budget ({AUTO_WEAK_MAX_ITER}) rather than to a gap it may never "
                            "prove; consider fewer features (PCA) or a larger k")
    if "hybrid" in names and d <= 32 and problem.is_enumerated:
        return "hybrid", f"one metric per class, d = {d} <= 32 and listed triplets: the exact hybrid"
    return "fista", (f"one metric per class at d = {d} with implicit triplets: the first-order FISTA (one "
                     "SDP block per class would make the exact solvers slow here); it certifies its result")


def auto_defaults(problem, name: str) -> dict:
    """The options ``"auto"`` gives the solver it chose (the caller's own options win)."""
    out = {"tol": AUTO_TOL}
    if name == "factored" and problem.n_metrics == 1 and not problem._pull_definite:
        out["max_iter"] = AUTO_WEAK_MAX_ITER
    return out


def choose_solver(problem) -> str:
    """The solver ``"auto"`` picks for ``problem`` (see :func:`choose_solver_with_reason`)."""
    return choose_solver_with_reason(problem)[0]


def solve(problem, solver="auto", **options):
    """Solve an LMNN problem and return a certified :class:`~convexmetric.LMNNResult`.

    Parameters
    ----------
    problem : LMNNProblem
    solver : str or Solver
        A registry name (see :func:`available_solvers`), ``"auto"``, or a solver
        instance (then ``options`` must be empty). ``"auto"`` picks by the problem
        (:func:`choose_solver_with_reason`), aims for a certified relative gap of
        :data:`AUTO_TOL` unless ``tol`` is given, and stores its choice and the reason
        in ``result.info["auto"]``.
    **options
        Solver options (see each solver's docstring).
    """
    if isinstance(solver, Solver):
        if options:
            raise TypeError("pass options to the solver instance, not to solve()")
        return solver.solve(problem)
    if solver == "auto":
        solver, reason = choose_solver_with_reason(problem)
        logger.info("solver='auto' picked %r for %r: %s", solver, problem, reason)
        res = get_solver(solver, **{**auto_defaults(problem, solver), **options}).solve(problem)
        res.info["auto"] = {"solver": solver, "reason": reason}
        return res
    return get_solver(solver, **options).solve(problem)


__all__ = ["REGISTRY", "SolverEntry", "Solver", "StopSolver", "auto_defaults", "available_solvers", "choose_solver",
           "choose_solver_with_reason", "get_solver", "register", "solve"]
