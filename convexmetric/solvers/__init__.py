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
#: T = 180 000: 5 s at d = 20, 16 s at d = 30; an earlier prototype of the hybrid
#: needed 292 s at d = 50).
AUTO_EXACT_MAX_DIM = 32


def choose_solver_with_reason(problem) -> tuple[str, str]:
    """The solver ``"auto"`` picks for ``problem`` and a one-line reason.

    The rule: ``factored`` on working sets for one metric with at least
    :data:`~convexmetric.solvers.factored.WORKING_SET_MIN_TRIPLETS` implicit triplets
    (MNIST-sized problems, where each full pass costs seconds); the exact ``hybrid`` up
    to :data:`AUTO_EXACT_MAX_DIM` features; else
    ``band-ipm`` (also exact) for one metric whose pull matrix is definite on the
    data's span (measured: digits d = 64 certified to 5e-6 in 7 s, synthetic d = 50 to
    4.5e-5 in 42 s, Isolet d = 172 to 2.5e-3 in 5 min, where FISTA certified 4e-2,
    5e-2 and 2.5e-2); else ``fista``. A solver whose packages are missing is skipped.

    Returns
    -------
    name : str
        A registry name.
    reason : str
        Why, in words, for logs and the command line.
    """
    names = available_solvers()
    d, limit = problem.d, AUTO_EXACT_MAX_DIM
    from .factored import WORKING_SET_MIN_TRIPLETS
    if (not problem.is_enumerated and problem.n_metrics == 1
            and problem.n_candidate_triplets >= WORKING_SET_MIN_TRIPLETS):
        return "factored", (f"{problem.n_candidate_triplets:.3g} implicit triplets: every full pass costs "
                            "seconds, so L-BFGS on the factor L iterates on working sets of impostor pairs "
                            "between full passes (measured: full MNIST); its result is certified like any other")
    if "hybrid" in names and d <= limit:
        return "hybrid", (f"d = {d} <= {limit}: the exact hybrid (a short FISTA warm start, then the "
                          "exact SDP on the few triplets near the margin) is fast at this size")
    one_definite = problem.n_metrics == 1 and problem._pull_definite
    if "band-ipm" in names and one_definite:
        why = (f"d = {d} > {limit}, where the SDP of 'hybrid' gets slow" if d > limit
               else "'hybrid' needs cvxpy and clarabel, which are not installed")
        return "band-ipm", (f"{why}; one metric with a definite pull matrix, so the exact "
                            "margin-band interior point applies")
    if d <= limit:
        why = "'hybrid' needs cvxpy and clarabel, which are not installed"
    elif problem.n_metrics != 1:
        why = f"d = {d} > {limit} and {problem.n_metrics} metrics ('band-ipm' learns one)"
    elif not problem._pull_definite:
        why = (f"d = {d} > {limit} and the target differences do not span the data "
               "('band-ipm' needs a definite pull matrix)")
    else:
        why = f"d = {d} > {limit} and 'band-ipm' is unavailable"
    return "fista", f"{why}; the first-order FISTA still certifies its result"


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
        instance (then ``options`` must be empty).
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
    return get_solver(solver, **options).solve(problem)


__all__ = ["REGISTRY", "SolverEntry", "Solver", "StopSolver", "available_solvers", "choose_solver",
           "choose_solver_with_reason", "get_solver", "register", "solve"]
