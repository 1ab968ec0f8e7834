"""The operator caps glibc's malloc arenas (perfguard.memory); each case runs in a fresh
interpreter, since the setting is process-wide."""

from __future__ import annotations

import os
import subprocess
import sys

CALL = "from perfguard.memory import limit_malloc_arenas; print(limit_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", CALL], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_arena_cap_takes_effect_on_glibc() -> None:
    # The project runs on Linux with glibc (the image is Debian-based, as is CI).
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"


def test_a_users_malloc_arena_max_is_left_alone() -> None:
    assert _run({**os.environ, "MALLOC_ARENA_MAX": "4"}) == "False"
