"""What the NVIDIA DCGM exporter's numbers mean: clock-event bits, blank sentinels, XID codes.

Pure lookups and array masks, shared by the CapacityPlan detectors. Nothing here queries
anything; values arrive as the float64 arrays a Prometheus range query yields.

Sources for the constants: DCGM's ``dcgm_structs.h`` / ``dcgmvalue.h`` (blank values),
NVML's ``nvmlClocksEventReasons`` (``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``, formerly
``..._CLOCK_THROTTLE_REASONS``) and NVIDIA's XID catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Severity: TypeAlias = Literal["Critical", "Warning"]

__all__ = [
    "CLOCK_EVENT_BITS",
    "DCGM_FP64_BLANK",
    "DCGM_INT32_BLANK",
    "DCGM_INT64_BLANK",
    "HW_SLOWDOWN",
    "POWER_CAPPING_MASK",
    "THERMAL_MASK",
    "XID_TABLE",
    "ClockEvent",
    "Severity",
    "XidInfo",
    "decode_clock_events",
    "is_power_capping",
    "is_sentinel",
    "is_thermal",
    "split_clock_events",
    "valid_samples",
    "xid_info",
]


class ClockEvent(StrEnum):
    """Why the GPU's clocks are below their maximum (one NVML clocks-event reason each)."""

    GPU_IDLE = "GpuIdle"
    APPLICATIONS_CLOCKS_SETTING = "ApplicationsClocksSetting"
    SW_POWER_CAP = "SwPowerCap"
    HW_SLOWDOWN = "HwSlowdown"
    SYNC_BOOST = "SyncBoost"
    SW_THERMAL_SLOWDOWN = "SwThermalSlowdown"
    HW_THERMAL_SLOWDOWN = "HwThermalSlowdown"
    HW_POWER_BRAKE_SLOWDOWN = "HwPowerBrakeSlowdown"
    DISPLAY_CLOCK_SETTING = "DisplayClockSetting"


CLOCK_EVENT_BITS: Final[Mapping[ClockEvent, int]] = MappingProxyType(
    {
        ClockEvent.GPU_IDLE: 0x1,
        ClockEvent.APPLICATIONS_CLOCKS_SETTING: 0x2,
        ClockEvent.SW_POWER_CAP: 0x4,
        ClockEvent.HW_SLOWDOWN: 0x8,
        ClockEvent.SYNC_BOOST: 0x10,
        ClockEvent.SW_THERMAL_SLOWDOWN: 0x20,
        ClockEvent.HW_THERMAL_SLOWDOWN: 0x40,
        ClockEvent.HW_POWER_BRAKE_SLOWDOWN: 0x80,
        ClockEvent.DISPLAY_CLOCK_SETTING: 0x100,
    }
)

THERMAL_MASK: Final = 0x20 | 0x40  # software and hardware thermal slowdown
POWER_CAPPING_MASK: Final = 0x4 | 0x80  # software power cap and hardware power brake
# Hardware slowdown: clocks cut by half or more for temperature, an external power brake or
# power draw tripping the fast trigger. NVML does not say which; see split_clock_events.
HW_SLOWDOWN: Final = 0x8

# DCGM's "no value" markers (dcgm_structs.h). Each base is followed by offsets for "not
# found" (+1), "not supported" (+2), "not permissioned" (+3) and room for more: DCGM's own
# comment says the FP64 base leaves 47 bits "so it can still represent each value from
# 0-15". The exporter skips the defined ones in recent releases, but older exporters, other
# collectors and recording rules over them still let them through, and one 2^47 in a mean
# of utilisation wrecks every statistic downstream.
DCGM_INT32_BLANK: Final = 0x7FFFFFF0
DCGM_INT64_BLANK: Final = 0x7FFFFFFFFFFFFFF0
DCGM_FP64_BLANK: Final = 140737488355328.0  # 2**47
_SENTINEL_BAND: Final = 16


def decode_clock_events(mask: int) -> frozenset[ClockEvent]:
    """The reasons set in a ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS`` bitmask.

    Bits this table does not know (newer drivers add reasons) are ignored rather than
    rejected: an unknown reason must not hide the known ones next to it.
    """
    if mask < 0:
        raise ValueError(f"a clock-event bitmask is not negative, got {mask}")
    return frozenset(event for event, bit in CLOCK_EVENT_BITS.items() if mask & bit)


def is_thermal(mask: int) -> bool:
    """Software (0x20) or hardware (0x40) thermal slowdown, or hardware slowdown (0x8)
    without a power-capping bit (see ``split_clock_events``)."""
    return bool(mask & THERMAL_MASK) or bool(mask & HW_SLOWDOWN and not is_power_capping(mask))


def is_power_capping(mask: int) -> bool:
    """Software power cap (0x4) or hardware power brake (0x80)."""
    return bool(mask & POWER_CAPPING_MASK)


def split_clock_events(masks: IntArray) -> tuple[IntArray, IntArray]:
    """Each sample's thermal and power-capping bits, with hardware slowdown (0x8) given to
    exactly one of them.

    0x8 joins the power-capping bits when the same sample has one (0x4 or 0x80: power is
    what the hardware acted on), and the thermal bits otherwise, also when it is alone:
    temperature is its first cause in NVML's list, and a GPU held at half its clocks by
    the hardware must not go unreported for want of a reason.
    """
    power = masks & POWER_CAPPING_MASK
    slowdown = masks & HW_SLOWDOWN
    with_power = power != 0
    thermal = (masks & THERMAL_MASK) | np.where(with_power, 0, slowdown)
    return thermal, power | np.where(with_power, slowdown, 0)


def is_sentinel(values: npt.ArrayLike) -> BoolArray:
    """Which values are DCGM blank/not-found/not-supported markers rather than measurements.

    A Prometheus sample no longer says whether the DCGM field was INT32, INT64 or FP64, so
    the three marker bands are matched on the float value:

    * INT32: 0x7ffffff0 .. 0x7fffffff, the top 16 values an int32 can hold;
    * FP64: 2^47 .. 2^47 + 15. Only this band, not "everything from 2^47 up" as DCGM's own
      ``DCGM_FP64_IS_BLANK`` on a known FP64 field: an INT64 counter (bytes, energy in mJ)
      can legitimately exceed 2^47, and after the float conversion it is indistinguishable
      from an FP64 field;
    * INT64: from 0x7ffffffffffffff0 up, which as float64 is 2^63 (the band collapses).

    Every gauge CapacityPlan reads (%, MiB, degrees, W, bitmasks, XID codes) is orders of
    magnitude below the smallest band.
    """
    x = np.asarray(values, dtype=np.float64)
    int32 = (x >= DCGM_INT32_BLANK) & (x < DCGM_INT32_BLANK + _SENTINEL_BAND)
    fp64 = (x >= DCGM_FP64_BLANK) & (x < DCGM_FP64_BLANK + _SENTINEL_BAND)
    int64 = x >= float(DCGM_INT64_BLANK)
    return np.asarray(int32 | fp64 | int64, dtype=np.bool_)


def valid_samples(values: npt.ArrayLike) -> FloatArray:
    """The values as float64 with sentinels, NaN and infinities replaced by NaN.

    The shape is kept (nothing is dropped), so index i still belongs to timestamp i and
    series stay aligned with each other and with the time grid.
    """
    x = np.array(values, dtype=np.float64)
    x[~np.isfinite(x) | is_sentinel(x)] = np.nan
    return x


@dataclass(frozen=True, slots=True)
class XidInfo:
    """One XID code: what it means and how urgently someone must act.

    ``Critical``: NVIDIA's catalogue asks for a GPU reset, a node drain or a hardware
    check (the GPU or its memory can no longer be trusted). ``Warning``: usually an
    application fault or a corrected/contained error; restart the application and watch
    for repeats.
    """

    code: int
    description: str
    severity: Severity


XID_TABLE: Final[Mapping[int, XidInfo]] = MappingProxyType(
    {
        info.code: info
        for info in (
            XidInfo(13, "Graphics engine exception", "Warning"),
            XidInfo(31, "GPU memory page fault", "Warning"),
            XidInfo(43, "GPU stopped processing", "Warning"),
            XidInfo(45, "Preemptive cleanup, due to previous errors", "Warning"),
            XidInfo(48, "Double-bit ECC error", "Critical"),
            XidInfo(61, "Internal micro-controller breakpoint/warning", "Warning"),
            XidInfo(62, "Internal micro-controller halt", "Critical"),
            XidInfo(63, "ECC page retirement or row remapping recorded", "Warning"),
            XidInfo(64, "ECC page retirement or row remapping failure", "Critical"),
            XidInfo(74, "NVLink error", "Critical"),
            XidInfo(79, "GPU has fallen off the bus", "Critical"),
            XidInfo(92, "High single-bit ECC error rate", "Warning"),
            XidInfo(94, "Contained ECC error", "Warning"),
            XidInfo(95, "Uncontained ECC error", "Critical"),
            XidInfo(119, "GSP RPC timeout", "Critical"),
            XidInfo(120, "GSP error", "Critical"),
        )
    }
)


def xid_info(code: int) -> XidInfo:
    """The table entry for ``code``; an unknown code is ``XID {code}``, severity Warning."""
    return XID_TABLE.get(code) or XidInfo(code, f"XID {code}", "Warning")
