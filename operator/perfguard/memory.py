"""Process-wide memory settings for the long-running operator.

glibc gives each thread that contends for the allocator an arena of its own, up to eight
per core, and an arena's freed pages are rarely returned. The operator decodes and aligns
large Prometheus answers on worker threads (a CapacityPlan of 512 GPUs: nine answers of
about 20 MiB), so the arenas fragment and peak RSS drifts from one evaluation to the next.
Two arenas cost no measurable time and keep the peak lower and steadier (docs/benchmarks.md,
"Operator scale: EnvParity and CapacityPlan").
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Final

ARENAS: Final = 2
_M_ARENA_MAX: Final = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the rest of the process; True when it took effect.

    Left alone when MALLOC_ARENA_MAX is set (glibc read it at start: the user's choice) and
    on a C library without `mallopt` or a non-Linux system.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
