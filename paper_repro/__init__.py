"""Reproduction of the JMLR 2009 LMNN results; the code lives in :mod:`convexmetric.repro`."""
