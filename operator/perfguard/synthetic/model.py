"""Everything a scenario determines before counting noise, built once and lazily."""

from __future__ import annotations

from functools import cached_property

from perfguard.synthetic.gpu import GpuFleetModel, build_gpu_fleet
from perfguard.synthetic.latency import LatencyModel, build_latency
from perfguard.synthetic.node import NodeFleetModel, build_node_fleet
from perfguard.synthetic.scenario import Scenario
from perfguard.synthetic.timeline import Timeline
from perfguard.synthetic.traffic import TrafficModel, build_traffic


class ScenarioModel:
    """The generator's ground truth: rates, latency distributions and gauge values.

    The writer samples counts from it; `Expected` answers questions about it. Both build
    it from the same scenario, so they agree by construction.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.timeline = Timeline.of(scenario)

    @cached_property
    def traffic(self) -> TrafficModel:
        return build_traffic(self.scenario, self.timeline)

    @cached_property
    def latency(self) -> LatencyModel:
        return build_latency(self.scenario, self.timeline, self.traffic)

    @cached_property
    def gpus(self) -> GpuFleetModel:
        return build_gpu_fleet(self.scenario, self.timeline, self.traffic)

    @cached_property
    def nodes(self) -> NodeFleetModel:
        return build_node_fleet(self.scenario, self.timeline, self.traffic)
