"""Kopf registrations: one daemon per resource of each kind. Decisions live elsewhere."""

from __future__ import annotations

from typing import Any

import kopf

from perfguard import GROUP, VERSION
from perfguard.api.capacityplan import CapacityVerdict
from perfguard.api.envparity import ParityVerdict
from perfguard.api.perfbaseline import Verdict
from perfguard.api.resources import CAPACITY_PLAN, ENV_PARITY, PERF_BASELINE
from perfguard.engine.status_news import perfbaseline_news
from perfguard.handlers.capacityplan import evaluate_capacityplan
from perfguard.handlers.envparity import evaluate_envparity, forget, watched_object_changed
from perfguard.handlers.perfbaseline import evaluate_perfbaseline
from perfguard.handlers.reconcile import ResourceLoop, wake_on_change

# At the operator's stop Kopf sets each daemon's stop flag; an evaluation in flight gets
# this long to finish and be written (write_cause's hand-over) before Kopf cancels it,
# then 5 s to go. Without a backoff Kopf cancels at once and the evaluation is lost.
# Within the chart's terminationGracePeriodSeconds (30) with Kopf's own wait of up to
# 5 s for its tasks; a CapacityPlan evaluation longer than this is lost, and its
# resource evaluated at once by the next operator (resume_delay's grace).
FINISH_AT_STOP_S = 10.0

PERF_BASELINE_LOOP = ResourceLoop(
    PERF_BASELINE,
    evaluate_perfbaseline,
    tuple(v.value for v in Verdict),
    lambda spec: spec.analysis.interval,
    # Its numbers move every evaluation; they are written with news or every statusRefresh.
    news=perfbaseline_news,
)
ENV_PARITY_LOOP = ResourceLoop(
    ENV_PARITY,
    evaluate_envparity,
    tuple(v.value for v in ParityVerdict),
    lambda spec: spec.interval,
    forget,
    # It learns which namespaces' workloads wake it by evaluating (handlers/envparity.py):
    # waiting out the interval after a restart would miss changes made meanwhile.
    resume=False,
)
CAPACITY_PLAN_LOOP = ResourceLoop(
    CAPACITY_PLAN,
    evaluate_capacityplan,
    tuple(v.value for v in CapacityVerdict),
    lambda spec: spec.interval,
)


@kopf.daemon(
    GROUP,
    VERSION,
    PERF_BASELINE.plural,
    cancellation_backoff=FINISH_AT_STOP_S,
    cancellation_timeout=5.0,
)
async def perfbaseline_daemon(**kwargs: Any) -> None:
    await PERF_BASELINE_LOOP.run(**kwargs)


@kopf.daemon(
    GROUP,
    VERSION,
    ENV_PARITY.plural,
    cancellation_backoff=FINISH_AT_STOP_S,
    cancellation_timeout=5.0,
)
async def envparity_daemon(**kwargs: Any) -> None:
    await ENV_PARITY_LOOP.run(**kwargs)


@kopf.daemon(
    GROUP,
    VERSION,
    CAPACITY_PLAN.plural,
    cancellation_backoff=FINISH_AT_STOP_S,
    cancellation_timeout=5.0,
)
async def capacityplan_daemon(**kwargs: Any) -> None:
    await CAPACITY_PLAN_LOOP.run(**kwargs)


@kopf.on.event(GROUP, VERSION, PERF_BASELINE.plural)
@kopf.on.event(GROUP, VERSION, ENV_PARITY.plural)
@kopf.on.event(GROUP, VERSION, CAPACITY_PLAN.plural)
async def spec_changed(**kwargs: Any) -> None:
    await wake_on_change(**kwargs)


# No on.delete handler: each daemon drops its resource's metrics when it is stopped for
# the deletion (ResourceLoop.run). Kopf needs no diff-base annotation for daemons and
# event handlers, so it patches an object once only, for the finalizer daemons require.


# What EnvParity compares: a change to any of these in a compared namespace re-evaluates
# the EnvParities comparing it (debounced; see handlers/envparity.py). Pods are not
# watched: a rollout shows on its workload's status too, at a fraction of the events.
@kopf.on.event("apps", "v1", "deployments")
@kopf.on.event("apps", "v1", "statefulsets")
@kopf.on.event("apps", "v1", "daemonsets")
@kopf.on.event("argoproj.io", "v1alpha1", "rollouts")
@kopf.on.event("", "v1", "configmaps")
async def compared_object_changed(namespace: str | None, **_: Any) -> None:
    watched_object_changed(namespace)
