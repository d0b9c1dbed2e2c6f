"""Saving and loading results and fitted estimators, without pickle.

A file is one NumPy ``.npz`` archive: the arrays (the metric ``M``, for an estimator
also ``components_``, ``targets_`` and ``classes_``) as plain ``.npy`` members, and one
member ``__metadata__`` holding a JSON string with everything else: the format name and
version, the package version, the solver, its options (JSON values only: callables
and arrays such as a warm start are dropped), status, objective, lower bound, gaps,
timings, the certificate's numbers and the iteration history. Files are read with
``np.load(..., allow_pickle=False)``, so loading one never runs code; a file holding
pickled objects, or written in an unknown format version, is refused with
:class:`FormatError`.

A loaded result is a plain :class:`~convexmetric.LMNNResult` whose ``certificate`` is
None; the certificate's numbers are kept (``fun``, ``lower_bound``, ``gap``,
``relative_gap``, and the rest in ``info["certificate"]``). :func:`recertify` (or
``load_result(path, problem=p)``) certifies the loaded metric afresh against a problem.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .result import OPTIMAL, OPTIMAL_INACCURATE, LMNNResult

logger = logging.getLogger(__name__)

#: The format's name, stored in every file.
FORMAT = "convexmetric"
#: Version of the layout written here; files of another version are refused.
FORMAT_VERSION = 1
_META = "__metadata__"
#: Certificate attributes kept as numbers (the dual weights and bounds are not saved).
_CERT_FIELDS = ("objective", "lower_bound", "gap", "relative_gap", "lb_scale", "lb_ball", "method",
                "n_support", "n_polished", "time")


class FormatError(ValueError):
    """A file is not a convexmetric save file this version can read (wrong kind, unknown
    format version, pickled objects, damaged); the message names the file."""


# -- JSON values ---------------------------------------------------------------------
_DROP = object()


def _plain(value):
    """``value`` as plain JSON data (NumPy scalars and small arrays converted), or ``_DROP``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item() if isinstance(value, (np.number, np.bool_, np.str_)) else _DROP
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _plain(v)
            if v is _DROP or not isinstance(k, str):
                return _DROP
            out[k] = v
        return out
    if isinstance(value, (list, tuple)):
        out = [_plain(v) for v in value]
        return _DROP if any(v is _DROP for v in out) else out
    return _DROP  # callables, arrays, solver objects, ...


def _plain_dict(d: dict, what: str) -> dict:
    """The JSON-able entries of ``d``; the dropped keys are logged."""
    out, dropped = {}, []
    for k, v in (d or {}).items():
        v = _plain(v)
        if v is _DROP or not isinstance(k, str):
            dropped.append(str(k))
        else:
            out[k] = v
    if dropped:
        logger.debug("not saved (not plain JSON data): %s %s", what, dropped)
    return out


# -- one result ------------------------------------------------------------------------
def _result_parts(result: LMNNResult, prefix: str):
    """``(arrays, metadata)`` of one result, array names starting with ``prefix``."""
    M = np.asarray(result.M)
    if M.dtype != np.float64:
        raise TypeError(f"the result's metric must be a float64 array, got dtype {M.dtype}")
    cert = result.certificate
    meta = {
        "solver": result.solver, "status": result.status, "fun": float(result.fun),
        "lower_bound": float(result.lower_bound), "gap": float(result.gap),
        "relative_gap": float(result.relative_gap), "nit": int(result.nit),
        "setup_time": float(result.setup_time), "solve_time": float(result.solve_time),
        "certify_time": float(result.certify_time),
        "options": _plain_dict(result.options, "option(s)"),
        "history": [_plain_dict(rec, "history field(s)") for rec in result.history],
        "info": _plain_dict(result.info, "info field(s)"),
        "certificate": (None if cert is None else _plain_dict({f: getattr(cert, f) for f in _CERT_FIELDS},
                                                              "certificate field(s)")),
    }
    return {prefix + "M": M}, meta


def _result_from(arrays: dict, meta: dict, prefix: str) -> LMNNResult:
    info = dict(meta["info"])
    if meta["certificate"] is not None:
        info["certificate"] = meta["certificate"]
    return LMNNResult(M=arrays[prefix + "M"], fun=meta["fun"], status=meta["status"], solver=meta["solver"],
                      lower_bound=meta["lower_bound"], gap=meta["gap"], relative_gap=meta["relative_gap"],
                      nit=meta["nit"], setup_time=meta["setup_time"], solve_time=meta["solve_time"],
                      certify_time=meta["certify_time"], options=meta["options"], history=meta["history"],
                      info=info, certificate=None)


# -- files -----------------------------------------------------------------------------
def _write(path, kind: str, arrays: dict, meta: dict) -> Path:
    """Write one archive atomically (a crash leaves the old file or none)."""
    from . import __version__
    path = Path(path)
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"{name} is an object array, which cannot be saved without pickle")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "convexmetric": __version__,
              **meta}
    members = {**arrays, _META: np.array(json.dumps(header, allow_nan=True))}
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
        np.savez(fh, **members)
    os.replace(tmp, path)
    return path


def _read(path, kind: str):
    """``(arrays, metadata)`` of a file of ``kind``, refusing pickles and unknown versions."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files") or _META not in z.files:
                raise FormatError(f"{path} is not a convexmetric file (no {_META} member)")
            arrays = {name: z[name] for name in z.files}
    except FormatError:
        raise
    except AttributeError as exc:   # a bare .npy file: np.load returned an array, not an archive
        raise FormatError(f"{path} is not a convexmetric file (not an .npz archive)") from exc
    except ValueError as exc:       # "Object arrays cannot be loaded" / "pickled data" when allow_pickle=False
        if "pickle" in str(exc):
            raise FormatError(f"{path} holds pickled objects; refused (loading them could run code): "
                              f"{exc}") from exc
        raise FormatError(f"{path} is not a readable convexmetric file: {exc}") from exc
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"{path} is not a readable convexmetric file: {exc}") from exc
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except (json.JSONDecodeError, TypeError) as exc:
        raise FormatError(f"{path}: its {_META} member is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise FormatError(f"{path} is not a convexmetric file (format {found!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise FormatError(f"{path} has format version {version!r}, this convexmetric reads version "
                          f"{FORMAT_VERSION}" + ("; it was written by a newer convexmetric: upgrade to read it"
                                                 if newer else ""))
    if meta.get("kind") != kind:
        other = {"result": "load_result", "estimator": "load_estimator"}.get(meta.get("kind"), "another loader")
        raise FormatError(f"{path} holds a saved {meta.get('kind')!r}, not a {kind!r}; read it with {other}")
    return arrays, meta


def save_result(path, result: LMNNResult) -> Path:
    """Save a solver result to ``path`` (an ``.npz`` archive, no pickle).

    Parameters
    ----------
    path : str or path-like
        The file to write, exactly as named (no suffix is added).
    result : LMNNResult
        One metric ``(d, d)`` or a multi-metric stack ``(C, d, d)``.

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(result, LMNNResult):
        raise TypeError(f"result must be an LMNNResult, got {type(result).__name__}")
    arrays, meta = _result_parts(result, "")
    return _write(path, "result", arrays, meta)


def load_result(path, problem=None) -> LMNNResult:
    """Load a result saved by :func:`save_result`.

    Parameters
    ----------
    path : str or path-like
    problem : LMNNProblem or None
        When given, the loaded metric is re-certified against it (see :func:`recertify`).

    Returns
    -------
    LMNNResult
        ``certificate`` is None unless re-certified; the saved certificate's numbers are
        in ``fun``, ``lower_bound``, ``gap``, ``relative_gap`` and ``info["certificate"]``.
    """
    arrays, meta = _read(path, "result")
    result = _result_from(arrays, meta, "")
    return result if problem is None else recertify(result, problem)


def recertify(result: LMNNResult, problem) -> LMNNResult:
    """A copy of ``result`` with a fresh certificate of its metric against ``problem``.

    The objective, lower bound, gaps and certificate come from ``problem.certificate(M)``;
    an ``optimal``/``optimal_inaccurate`` status is re-graded against the solver's
    ``tol`` (as the solver itself does). The metric's shape must be the problem's.
    """
    import time
    expect = problem.identity_metric().shape
    M = np.asarray(result.M)
    if M.shape != expect:
        raise ValueError(f"the metric has shape {M.shape} but this problem needs {expect} (d = {problem.d} "
                         f"features, {problem.n_metrics} metric(s)): it was learned on other data")
    t0 = time.perf_counter()
    cert = problem.certificate(M)
    status = result.status
    tol = result.options.get("tol")
    if status in (OPTIMAL, OPTIMAL_INACCURATE) and isinstance(tol, (int, float)) \
            and not math.isnan(cert.relative_gap):
        status = OPTIMAL if cert.relative_gap <= tol else OPTIMAL_INACCURATE
    return replace(result, fun=cert.objective, lower_bound=cert.lower_bound, gap=cert.gap,
                   relative_gap=cert.relative_gap, status=status, certificate=cert,
                   certify_time=time.perf_counter() - t0, info={**result.info})


# -- the scikit-learn estimator --------------------------------------------------------------
_ESTIMATOR_ARRAYS = ("metric_", "components_", "targets_", "classes_")


def save_estimator(path, estimator) -> Path:
    """Save a fitted :class:`~convexmetric.estimator.LMNN` to ``path`` (an ``.npz`` archive, no pickle).

    Kept: the constructor parameters (those that are plain JSON data; a solver instance or a
    callable in ``solver_options`` is dropped with a warning and loads as the default),
    ``metric_``, ``components_``, ``targets_``, ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` if set, ``n_iter_``, the held-out rows and error of
    ``validation_fraction`` and every pass's result.
    """
    from sklearn.utils.validation import check_is_fitted

    from .estimator import LMNN
    if not isinstance(estimator, LMNN):
        raise TypeError(f"estimator must be a convexmetric LMNN, got {type(estimator).__name__}")
    check_is_fitted(estimator, "components_")
    params, dropped = {}, []
    for k, v in estimator.get_params(deep=False).items():
        if k == "validation_fraction" and v is None:
            continue    # left out at its default, so files without it stay readable by older versions
        if k == "solver_options" and isinstance(v, dict):
            kept = _plain_dict(v, "solver option(s)")
            dropped += [f"solver_options[{o!r}]" for o in v if o not in kept]
            v = kept
        pv = _plain(v)
        if pv is _DROP:
            dropped.append(k)
        else:
            params[k] = pv
    if dropped:
        import warnings
        warnings.warn(f"not saved (not plain JSON data; they load as defaults): {', '.join(dropped)}",
                      UserWarning, stacklevel=2)
    arrays = {}
    for name in _ESTIMATOR_ARRAYS:
        a = np.asarray(getattr(estimator, name))
        if name == "classes_" and a.dtype.hasobject:  # e.g. strings from an object column
            a = np.asarray(a.tolist())
            if a.dtype.hasobject:
                raise TypeError("classes_ holds mixed Python objects, which cannot be saved without pickle")
        arrays[name] = a
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        arrays["feature_names_in_"] = np.asarray(names, dtype=str)
    held = getattr(estimator, "validation_rows_", None)
    if held is not None:
        arrays["validation_rows_"] = np.asarray(held)
    results = []
    for i, res in enumerate(estimator.results_):
        a, m = _result_parts(res, f"results.{i}.")
        arrays.update(a)
        results.append(m)
    held_error = getattr(estimator, "validation_error_", None)
    meta = {"params": params, "n_features_in_": int(estimator.n_features_in_),
            "n_iter_": int(estimator.n_iter_), "results": results,
            "validation_error_": None if held_error is None else float(held_error)}
    return _write(path, "estimator", arrays, meta)


def load_estimator(path):
    """Load an estimator saved by :func:`save_estimator`; it transforms exactly as the saved one."""
    from .estimator import LMNN
    arrays, meta = _read(path, "estimator")
    est = LMNN(**meta["params"])
    for name in _ESTIMATOR_ARRAYS:
        setattr(est, name, arrays[name])
    if "feature_names_in_" in arrays:
        est.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    est.n_features_in_ = meta["n_features_in_"]
    est.n_iter_ = meta["n_iter_"]
    est.results_ = [_result_from(arrays, m, f"results.{i}.") for i, m in enumerate(meta["results"])]
    est.result_ = est.results_[-1] if est.results_ else None
    est.solver_ = est.result_.solver if est.result_ is not None else None
    est.validation_rows_ = arrays["validation_rows_"] if "validation_rows_" in arrays else None
    est.validation_error_ = meta.get("validation_error_")
    return est


__all__ = ["FORMAT", "FORMAT_VERSION", "FormatError", "load_estimator", "load_result", "recertify",
           "save_estimator", "save_result"]
