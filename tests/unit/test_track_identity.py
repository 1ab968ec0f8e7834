"""A candidate is never judged against itself: when the workload names one pod-template
hash for both tracks (a fully promoted Rollout, or `perfguard evaluate --candidate-hash H
--stable-hash H`), no canary is in flight and the workload is watched, as with equal
Rollout hashes. (Label tracks that could select the same series are refused by the model:
tests/unit/test_perfbaseline_spec.py.)"""

from __future__ import annotations

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.tracks import TrackPlan, plan_tracks
from perfguard.sources.perfbaseline_queries import Track
from perfguard.sources.workloads import WorkloadHashes, deployment_hashes, rollout_hashes

SPEC = PerfBaselineSpec.model_validate(
    {
        "selector": {"service": "api"},
        "workloadRef": {"kind": "Rollout", "name": "api"},
        "comparison": "Both",
        "metrics": [
            {
                "name": "latency",
                "type": "Latency",
                "histogram": "req_seconds",
                "thresholds": {"p95": {"maxIncrease": "5ms"}},
            }
        ],
    }
)
HASH = "6d4f8b"


def assert_watches_the_workload(plan: TrackPlan) -> None:
    assert plan.candidate is None
    assert plan.current == Track("workload", {})
    assert not plan.concurrent and plan.no_stable is None
    assert plan.historical
    assert plan.baseline == Track("baseline", {"rollouts_pod_template_hash": HASH})
    assert plan.identity == HASH and plan.source == "WorkloadRef"


def test_a_promoted_rollout_is_not_judged_against_itself() -> None:
    # Handled before this test was written: rollout_hashes reads equal hashes as no canary.
    promoted = rollout_hashes({"status": {"currentPodHash": HASH, "stableRS": HASH}})
    assert promoted == WorkloadHashes(candidate=None, stable=HASH)
    assert_watches_the_workload(plan_tracks(SPEC, promoted))


def test_a_deployment_with_one_replica_set_has_no_candidate() -> None:
    rs = {
        "metadata": {
            "ownerReferences": [{"uid": "u1"}],
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "labels": {"pod-template-hash": HASH},
        },
        "spec": {"replicas": 2},
    }
    assert deployment_hashes("u1", [rs]) == WorkloadHashes(candidate=None, stable=HASH)


def test_equal_hashes_given_offline_are_no_canary() -> None:
    # `perfguard evaluate --candidate-hash H --stable-hash H` gave these straight to the
    # planner, which judged the stable track against itself: delta 0, Pass.
    assert_watches_the_workload(plan_tracks(SPEC, WorkloadHashes(candidate=HASH, stable=HASH)))


def test_different_hashes_are_a_canary_against_its_stable() -> None:
    plan = plan_tracks(SPEC, WorkloadHashes(candidate="c0ffee", stable=HASH))
    assert plan.candidate == Track("candidate", {"rollouts_pod_template_hash": "c0ffee"})
    assert plan.stable == Track("stable", {"rollouts_pod_template_hash": HASH})
    assert plan.concurrent and plan.identity == "c0ffee"
