"""convexmetric: convex metric learning with certified LMNN.

Quick start::

    from convexmetric import LMNNProblem, solve
    problem = LMNNProblem(X, y, k=3, mu=0.5)
    result = solve(problem)            # solver="auto"
    print(result.fun, result.relative_gap, result.status)

The problem object is the judge: ``problem.certificate(M)`` bounds how far any
metric ``M`` is from the global optimum. ``MultiMetricProblem`` learns one metric per
class; ``convexmetric.estimator.LMNN`` is the scikit-learn transformer,
``convexmetric.classify`` holds the paper's classifiers and ``convexmetric.plotting``
the plots (neither is imported here).
"""
import logging

from .certificate import Certificate
from .io import load_estimator, load_result, recertify, save_estimator, save_result
from .multimetric import MultiMetricProblem
from .problem import LMNNProblem
from .result import LMNNResult
from .solvers import available_solvers, get_solver, solve
from .triplets import TripletSet, TripletWeights

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Certificate", "LMNNProblem", "MultiMetricProblem", "LMNNResult", "TripletSet", "TripletWeights",
           "available_solvers", "get_solver", "solve", "save_result", "load_result", "recertify", "save_estimator",
           "load_estimator", "__version__"]
