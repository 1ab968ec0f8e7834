"""A real Prometheus over a short generated history that reaches past now, so an operator
evaluating at wall-clock time has data: the canary's inference stage shifted by 8 ms from
`regression_from` (an offset into the history) for `regression_for` (None: to the end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perfguard.local.processes import free_port
from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily, generate_file

DAYS = 0.05  # 72 minutes


def start_live_prometheus(
    work: Path,
    *,
    seed: int,
    ahead: timedelta = timedelta(minutes=15),
    regression_from: timedelta | None = None,
    regression_for: timedelta | None = None,
) -> LocalPrometheus:
    """Generate, backfill and start (on a fixed port, so a test can restart it); fails the
    test loudly when Prometheus does not come up."""
    history = timedelta(days=DAYS)
    start = regression_from if regression_from is not None else history - timedelta(minutes=40)
    scenario = Scenario(
        service="live",
        days=DAYS,
        end=datetime.now(UTC).replace(microsecond=0) + ahead,
        step=timedelta(seconds=5),
        seed=seed,
        canary_share=0.5,
        include=frozenset({SeriesFamily.LATENCY, SeriesFamily.REQUESTS}),
        injections=(
            Injection(
                InjectionKind.LATENCY_SHIFT,
                start=start,
                duration=regression_for,
                magnitude=8.0,
                track="canary",
                stage="inference",
            ),
        ),
    )
    generate_file(scenario, work / "live.om")
    backfill(work / "live.om", work / "data")
    server = LocalPrometheus(work / "data", port=free_port())
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    return server
