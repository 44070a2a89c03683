"""The analysis workers' fork server: what it preloads, and starting it early.  Standard library only.

On Linux the worker pool forks its workers from a ``forkserver`` that has imported the analysis
once (:data:`PRELOAD`).  Importing it takes about a second, on the critical path of every
command that analyses: nothing can be measured before the first worker exists.  The pool
(:class:`bridge.pipeline._Pool`) starts the server first thing, but by then the command has
imported numpy, the report and the session; :func:`start_early` lets a command start it before
any of that, so the server's imports and the command's own run on the two cores at once.
"""
from __future__ import annotations

import multiprocessing
import os
import sys

#: The heavy modules the fork server imports once, before the first worker forks from it.
PRELOAD = ("bridge.pipeline", "bridge.analyze.features", "bridge.analyze.stem", "bridge.cache", "soundfile",
           "scipy.fft", "bridge.analyze.kweight")
#: One BLAS thread per worker: the workers already fill the cores.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def context() -> multiprocessing.context.BaseContext:
    """The pool's start method: a preloading ``forkserver`` on Linux, ``spawn`` elsewhere."""
    for var in _BLAS_THREADS:
        os.environ.setdefault(var, "1")  # inherited by the server, so by every worker
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start_early() -> None:
    """Start the fork server now (it begins importing :data:`PRELOAD` at once); later pools use it."""
    if sys.platform.startswith("linux"):
        context()
        from multiprocessing import forkserver

        forkserver.ensure_running()
