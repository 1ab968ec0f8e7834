"""perfguard.analysis.dcgm: clock-event bits, blank sentinels and the XID table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfguard.analysis.dcgm import (
    CLOCK_EVENT_BITS,
    DCGM_FP64_BLANK,
    DCGM_INT32_BLANK,
    DCGM_INT64_BLANK,
    ClockEvent,
    decode_clock_events,
    is_power_capping,
    is_sentinel,
    is_thermal,
    split_clock_events,
    valid_samples,
    xid_info,
)
from perfguard.synthetic import (
    CLOCKS_EVENT_GPU_IDLE,
    CLOCKS_EVENT_HW_POWER_BRAKE,
    CLOCKS_EVENT_HW_SLOWDOWN,
    CLOCKS_EVENT_HW_THERMAL,
    CLOCKS_EVENT_SW_POWER_CAP,
    CLOCKS_EVENT_SW_THERMAL,
)

EXPECTED_BITS = {
    0x1: ClockEvent.GPU_IDLE,
    0x2: ClockEvent.APPLICATIONS_CLOCKS_SETTING,
    0x4: ClockEvent.SW_POWER_CAP,
    0x8: ClockEvent.HW_SLOWDOWN,
    0x10: ClockEvent.SYNC_BOOST,
    0x20: ClockEvent.SW_THERMAL_SLOWDOWN,
    0x40: ClockEvent.HW_THERMAL_SLOWDOWN,
    0x80: ClockEvent.HW_POWER_BRAKE_SLOWDOWN,
    0x100: ClockEvent.DISPLAY_CLOCK_SETTING,
}


@pytest.mark.parametrize(("bit", "event"), sorted(EXPECTED_BITS.items()))
def test_every_bit_decodes_to_its_own_event(bit: int, event: ClockEvent) -> None:
    assert decode_clock_events(bit) == frozenset({event})
    assert CLOCK_EVENT_BITS[event] == bit


def test_zero_means_no_reason_and_the_table_is_complete() -> None:
    assert decode_clock_events(0) == frozenset()
    assert set(CLOCK_EVENT_BITS) == set(ClockEvent)
    assert decode_clock_events(0x1FF) == frozenset(ClockEvent)


def test_combinations_decode_to_every_bit_set() -> None:
    assert decode_clock_events(0x20 | 0x40) == {
        ClockEvent.SW_THERMAL_SLOWDOWN,
        ClockEvent.HW_THERMAL_SLOWDOWN,
    }
    assert decode_clock_events(0x4 | 0x80 | 0x1) == {
        ClockEvent.SW_POWER_CAP,
        ClockEvent.HW_POWER_BRAKE_SLOWDOWN,
        ClockEvent.GPU_IDLE,
    }


def test_unknown_high_bits_do_not_hide_known_ones() -> None:
    assert decode_clock_events(0x1000 | 0x40) == {ClockEvent.HW_THERMAL_SLOWDOWN}
    assert decode_clock_events(0x1000) == frozenset()


def test_negative_mask_is_rejected() -> None:
    with pytest.raises(ValueError, match="not negative"):
        decode_clock_events(-1)


def test_the_generator_uses_the_same_bits() -> None:
    assert CLOCK_EVENT_BITS[ClockEvent.GPU_IDLE] == CLOCKS_EVENT_GPU_IDLE
    assert CLOCK_EVENT_BITS[ClockEvent.SW_POWER_CAP] == CLOCKS_EVENT_SW_POWER_CAP
    assert CLOCK_EVENT_BITS[ClockEvent.HW_SLOWDOWN] == CLOCKS_EVENT_HW_SLOWDOWN
    assert CLOCK_EVENT_BITS[ClockEvent.SW_THERMAL_SLOWDOWN] == CLOCKS_EVENT_SW_THERMAL
    assert CLOCK_EVENT_BITS[ClockEvent.HW_THERMAL_SLOWDOWN] == CLOCKS_EVENT_HW_THERMAL
    assert CLOCK_EVENT_BITS[ClockEvent.HW_POWER_BRAKE_SLOWDOWN] == CLOCKS_EVENT_HW_POWER_BRAKE


@pytest.mark.parametrize(
    ("mask", "thermal", "power"),
    [
        (0x0, False, False),
        (0x1, False, False),
        (0x8, True, False),  # HW slowdown without a power bit counts as thermal
        (0x8 | 0x20, True, False),
        (0x8 | 0x4, False, True),  # with a power bit, as power
        (0x8 | 0x80 | 0x40, True, True),
        (0x20, True, False),
        (0x40, True, False),
        (0x4, False, True),
        (0x80, False, True),
        (0x20 | 0x4, True, True),
        (0x1FF & ~(0x20 | 0x40 | 0x4 | 0x80 | 0x8), False, False),
    ],
)
def test_thermal_and_power_helpers(mask: int, thermal: bool, power: bool) -> None:
    assert is_thermal(mask) is thermal
    assert is_power_capping(mask) is power
    thermal_bits, power_bits = split_clock_events(np.array([mask], dtype=np.int64))
    assert (bool(thermal_bits[0]), bool(power_bits[0])) == (thermal, power)


def test_hardware_slowdown_goes_to_exactly_one_kind() -> None:
    masks = np.array([0x8, 0x8 | 0x4, 0x8 | 0x80, 0x8 | 0x20, 0x8 | 0x20 | 0x4, 0x1], np.int64)
    thermal, power = split_clock_events(masks)
    assert thermal.tolist() == [0x8, 0x0, 0x0, 0x28, 0x20, 0x0]
    assert power.tolist() == [0x0, 0xC, 0x88, 0x0, 0xC, 0x0]


def test_blank_constants_match_dcgm_structs() -> None:
    assert DCGM_INT32_BLANK == 2147483632
    assert DCGM_INT64_BLANK == 9223372036854775792
    assert DCGM_FP64_BLANK == 2.0**47


def test_sentinels_are_recognised_and_measurements_are_not() -> None:
    values = np.array(
        [
            DCGM_INT32_BLANK,  # blank
            DCGM_INT32_BLANK + 1,  # not found
            DCGM_INT32_BLANK + 2,  # not supported
            DCGM_INT32_BLANK + 3,  # not permissioned
            0x7FFFFFFF,  # top of the int32 band
            DCGM_FP64_BLANK,
            DCGM_FP64_BLANK + 2.0,
            float(DCGM_INT64_BLANK),
            float(DCGM_INT64_BLANK + 3),
        ]
    )
    assert is_sentinel(values).all()
    measurements = np.array(
        [0.0, 55.0, 81920.0, 350.5, 0x60, 79.0, DCGM_INT32_BLANK - 1, 2.0**33, 2.0**50]
    )
    assert not is_sentinel(measurements).any()


def test_valid_samples_keeps_the_shape_and_blanks_out_junk() -> None:
    raw = np.array(
        [[12.0, DCGM_FP64_BLANK, math.nan], [math.inf, 40.0, float(DCGM_INT32_BLANK + 2)]]
    )
    cleaned = valid_samples(raw)
    assert cleaned.shape == raw.shape
    assert cleaned.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(cleaned), [[False, True, True], [True, False, True]])
    assert cleaned[0, 0] == 12.0
    assert cleaned[1, 1] == 40.0
    assert raw[0, 1] == DCGM_FP64_BLANK  # the input is not modified


def test_valid_samples_accepts_integer_input() -> None:
    cleaned = valid_samples([0, 79, DCGM_INT32_BLANK])
    np.testing.assert_array_equal(cleaned[:2], [0.0, 79.0])
    assert math.isnan(cleaned[2])


@pytest.mark.parametrize(
    ("code", "severity", "words"),
    [
        (13, "Warning", "Graphics engine exception"),
        (31, "Warning", "page fault"),
        (43, "Warning", "stopped processing"),
        (45, "Warning", "Preemptive cleanup"),
        (48, "Critical", "Double-bit ECC"),
        (61, "Warning", "micro-controller"),
        (62, "Critical", "micro-controller halt"),
        (63, "Warning", "row remapping"),
        (64, "Critical", "failure"),
        (74, "Critical", "NVLink"),
        (79, "Critical", "fallen off the bus"),
        (92, "Warning", "single-bit ECC"),
        (94, "Warning", "Contained ECC"),
        (95, "Critical", "Uncontained ECC"),
        (119, "Critical", "GSP RPC timeout"),
        (120, "Critical", "GSP error"),
    ],
)
def test_xid_table(code: int, severity: str, words: str) -> None:
    info = xid_info(code)
    assert info.code == code
    assert info.severity == severity
    assert words in info.description


def test_unknown_xid_is_a_warning_named_by_its_code() -> None:
    info = xid_info(4242)
    assert (info.code, info.description, info.severity) == (4242, "XID 4242", "Warning")
