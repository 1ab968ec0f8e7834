"""Session-wide test set-up shared by unit, integration and e2e tests."""

from __future__ import annotations

import importlib
import pkgutil
import warnings

import hypothesis
from hypothesis.errors import HypothesisSideeffectWarning

# Optional integrations: they need packages we do not install.
SKIPPED = ("hypothesis.extra",)


def _import_hypothesis_eagerly() -> None:
    """Import every Hypothesis module now, at collection, instead of on first use.

    Hypothesis imports some of its modules lazily (the regex strategy on the first
    `from_regex` draw, the shrinker on the first failure). Being a pytest plugin, its
    modules go through pytest's assertion rewriter, which `ast.parse`s them. CPython
    3.11.7 (this machine's 3.11) can raise "SystemError: AST constructor recursion depth
    mismatch" when two AST conversions overlap (python/cpython#106905, fixed in 3.11.8),
    and a test that starts servers and clients has other threads formatting tracebacks,
    which parse too. A clean-clone CI run failed that way in the middle of a Hypothesis
    test (2026-12-03); at collection nothing else runs.
    """
    with warnings.catch_warnings():
        # Some of these modules read Hypothesis' unicode tables at import, which it flags as
        # slow work in a conftest: here it is the point (it moves that work out of tests).
        warnings.simplefilter("ignore", HypothesisSideeffectWarning)
        for module in pkgutil.walk_packages(hypothesis.__path__, "hypothesis."):
            if module.name.startswith(SKIPPED):
                continue
            try:
                importlib.import_module(module.name)
            except ImportError:
                continue


_import_hypothesis_eagerly()

# Property tests: no wall-clock deadline (a loaded 2-core CI machine is not a failure of the
# code; speed lives in `make bench`), and the same examples on every run, so a red CI run
# reproduces and a green one does not turn red by chance.
hypothesis.settings.register_profile("perfguard", deadline=None, derandomize=True)
hypothesis.settings.load_profile("perfguard")
