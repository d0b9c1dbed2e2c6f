"""``python -m paper_repro``: reproduce Table 1 of Weinberger & Saul (JMLR 2009).

The same as the ``convexmetric-repro`` console script; see :mod:`convexmetric.repro`.
"""
import sys

from convexmetric.repro import main

sys.exit(main())
