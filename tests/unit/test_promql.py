"""PromQL built from spec values: hostile label values cannot change the query."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfguard.api.perfbaseline import MetricSpec
from perfguard.sources import promql
from perfguard.sources.perfbaseline_queries import OVERFLOW, Track, window_query

HOSTILE = [
    'x"} or vector(1) or up{a="',
    "x\\",
    'x\\"}',
    "line\nbreak",
    "}",
    "{{selector}}",
    '\\\\"',
]


def unquote(literal: str) -> str:
    """Read a PromQL double-quoted string the way Prometheus' lexer does (Go escapes)."""
    assert literal.startswith('"') and literal.endswith('"')
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            out.append({"n": "\n", "r": "\r", "\\": "\\", '"': '"'}[nxt])
            i += 2
            continue
        assert ch != '"', "an unescaped quote would end the string early"
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_hostile_values(value: str) -> None:
    literal = promql.quote(value)
    assert unquote(literal) == value
    assert "\n" not in literal


@given(st.text())
def test_quote_round_trips_any_text(value: str) -> None:
    assert unquote(promql.quote(value)) == value


@pytest.mark.parametrize("name", ["", "1abc", "a-b", 'a"', "a b", "__name__", "a}"])
def test_invalid_label_names_are_refused(name: str) -> None:
    with pytest.raises(promql.UnsafeQueryError):
        promql.matchers({name: "x"})


def test_matchers_are_sorted_and_exact() -> None:
    assert promql.matchers({"b": "2", "a": "1"}, regex={"code": "5.."}) == (
        'a="1",b="2",code=~"5.."'
    )


def test_a_hostile_selector_value_stays_one_matcher_in_the_whole_query() -> None:
    metric = MetricSpec.model_validate(
        {
            "name": "latency",
            "type": "Latency",
            "histogram": "h",
            "thresholds": {"p95": {"maxIncrease": "5ms"}},
        }
    )
    hostile = 'x"} or vector(1) or up{a="'
    query = window_query(
        metric, {"service": hostile}, [Track("candidate", {"track": "c"})], timedelta(minutes=1)
    )
    literals = re.findall(r'"(?:[^"\\]|\\.)*"', query)
    assert promql.quote(hostile) in literals
    # Outside string literals, nothing of the hostile value remains.
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    assert "vector(1)" not in code and "up{" not in code


def test_template_selector_is_expanded_once() -> None:
    assert promql.render_template("sum(x{ {{selector}} })", 'a="1"') == 'sum(x{ a="1" })'
    assert promql.render_template("sum(x{ {{ selector }} })", 'a="1"') == 'sum(x{ a="1" })'


@pytest.mark.parametrize("value", HOSTILE)
def test_template_keeps_escaped_hostile_values_verbatim(value: str) -> None:
    selector = promql.matchers({"service": value})
    rendered = promql.render_template("avg(m{ {{selector}} })", selector)
    assert rendered == "avg(m{ " + selector + " })"


def test_the_overflow_share_is_in_the_same_request_per_track_and_stage() -> None:
    """A latency metric's query also asks, per track and stage, for the share of requests
    above the histogram's highest finite bucket (where histogram_quantile answers the bound,
    not the quantile): in the same request, so still two requests per metric."""
    latency = MetricSpec.model_validate(
        {
            "name": "latency",
            "type": "Latency",
            "histogram": "req_seconds",
            "stageLabel": "stage",
            "thresholds": {"p95": {"maxIncrease": "5ms"}},
        }
    )
    tracks = [Track("candidate", {"track": "c"}), Track("stable", {"track": "s"})]
    query = window_query(
        latency, {"service": "api"}, tracks, timedelta(minutes=1), stages_for="candidate"
    )
    for track in ("candidate", "stable"):
        assert f'"perfguard_track", "{track}", "", ""), "perfguard_stat", "{OVERFLOW}"' in query, (
            query
        )
    assert f'"perfguard_stat", "stage:{OVERFLOW}"' in query
    assert 'max without (le) (rate(req_seconds_bucket{service="api",stage="total",track="c",' in (
        query
    )
    assert 'le!~"(?i)[+]?inf(inity)?"' in query and 'le=~"(?i)[+]?inf(inity)?"' in query
    throughput = MetricSpec.model_validate(
        {
            "name": "rps",
            "type": "Throughput",
            "counter": "req_total",
            "thresholds": {"rate": {"maxDecrease": 10}},
        }
    )
    assert OVERFLOW not in window_query(throughput, {}, tracks[:1], timedelta(minutes=1))
