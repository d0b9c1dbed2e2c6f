"""Checks of scalar parameters shared by the problem and the solvers.

A parameter of the wrong type (a string such as ``mu="0.5"``, a bool, None) or out of
range raises :class:`InvalidParameterError`, which is both a ``ValueError`` and a
``TypeError`` (as scikit-learn's error of the same name), so callers catching either
keep working. The message names the parameter, what it must be and the type and value
it got.
"""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np


class InvalidParameterError(ValueError, TypeError):
    """A parameter has the wrong type or value; the message names it and what it got."""


def _fail(name: str, what: str, value):
    raise InvalidParameterError(f"{name} must be {what}, got {type(value).__name__} {value!r}")


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_real(name: str, value, what: str = "a finite real number",
               ok: Callable[[float], bool] | None = None, allow_none: bool = False):
    """Return ``value`` as a float after checking it is a real number (not a bool or string).

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        What the caller passed.
    what : str
        What the parameter must be, for the message (e.g. ``"a positive number"``).
    ok : callable or None
        Range test on the float value (NaN always fails).
    allow_none : bool
        Accept None (returned as None).
    """
    if value is None and allow_none:
        return None
    if _is_bool(value) or not isinstance(value, numbers.Real):
        _fail(name, what, value)
    v = float(value)
    if np.isnan(v) or (ok is not None and not ok(v)):
        _fail(name, what, value)
    return v


def check_int(name: str, value, low: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= low`` (not a bool or float)."""
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < low:
        _fail(name, what, value)
    return int(value)
