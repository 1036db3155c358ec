"""PowertoolsAuditSink: the decision log record, the tick line and the EMF lines it prints, read back from
stdout."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from ampscaler.adapters.audit import FLEET_METRICS, PER_RULE_METRICS, PowertoolsAuditSink, redact_text
from ampscaler.engine.types import Condition, Decision, EngineState, MetricResult
from ampscaler.model import Rule
from ampscaler.ports import LoadedRule
from ampscaler.rule import parse_rule

RULE_DOC = {
    "apiVersion": "ampscaler/v1",
    "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "web"},
    "minReplicas": 1,
    "maxReplicas": 10,
    "metrics": [
        {
            "name": "rps",
            "type": "External",
            "query": "sum(rate(http_requests_total[1m]))",
            "target": {"type": "AverageValue", "averageValue": 100},
        },
        {
            "name": "queue",
            "type": "External",
            "query": "sum(queue_depth)",
            "target": {"type": "Value", "value": 50},
        },
    ],
}


def make_rule(name: str = "team-a/web") -> Rule:
    return parse_rule(RULE_DOC, name=name)


def make_decision(*, limited: bool = True, fallback: bool = False, queue_error: bool = True) -> Decision:
    return Decision(
        desired_replicas=7,
        current_replicas=3,
        action="scale",
        reason="External metric rps above target",
        metrics=(
            MetricResult(name="rps", current=233.5, target=100.0, proposal=7, valid=True),
            MetricResult(
                name="queue",
                current=None if queue_error else 10.0,
                target=50.0,
                proposal=None if queue_error else 1,
                valid=not queue_error,
                error="HTTP 503" if queue_error else None,
            ),
        ),
        conditions=(
            Condition("AbleToScale", True, "SucceededRescale"),
            Condition("ScalingLimited", limited, "TooManyReplicas" if limited else "DesiredWithinRange"),
        ),
        state=EngineState(),
        fallback_active=fallback,
    )


def make_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event": "decision",
        "rule": "team-a/web",
        "parameter": "/ampscaler/rules/team-a/web",
        "parameterVersion": 4,
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "web"},
        "mode": "live",
        "patched": True,
        "timings": {"scale": 3.1, "metrics": 12.5, "decide": 0.4},
        "input": {"rule": RULE_DOC, "now": 1700000000.5, "observation": {"pods": [{"name": "token-a"}]}},
        "output": {"desiredReplicas": 7, "reason": "External metric rps above target"},
    }
    record.update(overrides)
    return record


def make_sink(**kwargs: Any) -> PowertoolsAuditSink:
    # A fresh service name per test: Powertools Loggers with the same name share the handler,
    # which would still point at a previous test's captured stdout.
    return PowertoolsAuditSink(Logger(service=f"audit-test-{uuid.uuid4().hex}"), **kwargs)


def read_lines(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log records, EMF blobs) printed to stdout so far."""
    logs: list[dict[str, Any]] = []
    emf: list[dict[str, Any]] = []
    for line in capsys.readouterr().out.splitlines():
        doc = json.loads(line)
        (emf if "_aws" in doc else logs).append(doc)
    return logs, emf


def blob_metrics(blob: dict[str, Any]) -> dict[str, Any]:
    """Metric name -> value; Powertools writes every value as an EMF array, one value unwrapped."""
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    values = {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in values.items()}


def blob_units(blob: dict[str, Any]) -> dict[str, str]:
    return {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def blob_dimensions(blob: dict[str, Any]) -> dict[str, str]:
    names = blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert len(names) == 1, "one dimension set per blob"
    return {name: blob[name] for name in names[0]}


def test_decision_record_logged_with_exact_input_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink()
    record = make_record()

    sink.decision(record, make_decision(), make_rule(), full=True)

    logs, _ = read_lines(capsys)
    assert len(logs) == 1
    log = logs[0]
    assert log["message"] == "decision"
    assert log["level"] == "INFO"
    assert log["event"] == "decision"
    # input/output survive exactly, even a pod whose name looks like a secret word.
    assert log["input"] == record["input"]
    assert log["output"] == record["output"]
    for key in ("rule", "parameter", "parameterVersion", "target", "mode", "patched", "timings"):
        assert log[key] == record[key], key


def test_decision_rule_metrics_with_rule_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink(per_rule_metrics=("team-a/web",))

    sink.decision(make_record(querySamplesProcessed=1234), make_decision(), make_rule(), full=True)

    _, emf = read_lines(capsys)
    per_rule = [b for b in emf if blob_dimensions(b) == {"Rule": "team-a/web"}]
    assert len(per_rule) == 1
    blob = per_rule[0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ampscaler"
    assert blob_metrics(blob) == {
        "DesiredReplicas": 7.0,
        "CurrentReplicas": 3.0,
        "ScaleEvents": 1.0,
        "EvaluationErrors": 1.0,
        "FallbackActive": 0.0,
        "ScalingLimited": 1.0,
        "QuerySamplesProcessed": 1234.0,
    }
    assert set(blob_units(blob).values()) == {"Count"}


def test_decision_metric_value_and_target_per_metric_dimension(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink(per_rule_metrics=("team-a/web",))

    sink.decision(make_record(), make_decision(queue_error=True), make_rule(), full=True)

    _, emf = read_lines(capsys)
    per_metric = {
        blob_dimensions(b)["Metric"]: b for b in emf if set(blob_dimensions(b)) == {"Rule", "Metric"}
    }
    assert set(per_metric) == {"rps", "queue"}
    assert blob_dimensions(per_metric["rps"]) == {"Rule": "team-a/web", "Metric": "rps"}
    assert blob_metrics(per_metric["rps"]) == {"MetricTarget": 100.0, "MetricValue": 233.5}
    assert blob_units(per_metric["rps"]) == {"MetricTarget": "None", "MetricValue": "None"}
    # A failed metric has no value to report, only its target.
    assert blob_metrics(per_metric["queue"]) == {"MetricTarget": 50.0}


@pytest.mark.parametrize(
    ("patched", "fallback", "limited", "expected"),
    [
        (True, False, False, {"ScaleEvents": 1.0, "FallbackActive": 0.0, "ScalingLimited": 0.0}),
        (False, True, True, {"ScaleEvents": 0.0, "FallbackActive": 1.0, "ScalingLimited": 1.0}),
    ],
    ids=["patched_unlimited", "dry_run_fallback_limited"],
)
def test_decision_flags_become_zero_or_one(
    capsys: pytest.CaptureFixture[str],
    patched: bool,
    fallback: bool,
    limited: bool,
    expected: dict[str, float],
) -> None:
    sink = make_sink(per_rule_metrics=("team-a/web",))

    sink.decision(
        make_record(patched=patched),
        make_decision(limited=limited, fallback=fallback),
        make_rule(),
        full=True,
    )

    _, emf = read_lines(capsys)
    blob = next(b for b in emf if blob_dimensions(b) == {"Rule": "team-a/web"})
    got = blob_metrics(blob)
    assert {k: got[k] for k in expected} == expected
    assert "QuerySamplesProcessed" not in got


def test_service_env_adds_no_dimension(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ampscaler-scaler")
    sink = make_sink()

    sink.decision(make_record(), make_decision(), make_rule(), full=True)
    sink.flush()

    _, emf = read_lines(capsys)
    assert emf
    for blob in emf:
        assert "service" not in blob_dimensions(blob)


def test_rule_invalid_logs_parameter_version_errors_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink(shard=2, per_rule_metrics=("*",))
    loaded = LoadedRule(
        name="team-a/web",
        parameter="/ampscaler/rules/team-a/web",
        version=5,
        rule=make_rule(),
        errors=("maxReplicas: must be >= minReplicas", "metrics[0].query: required"),
    )

    sink.rule_invalid(loaded)
    sink.flush()

    logs, emf = read_lines(capsys)
    assert len(logs) == 1
    assert logs[0]["level"] == "ERROR"
    assert logs[0]["event"] == "ruleInvalid"
    assert logs[0]["parameter"] == "/ampscaler/rules/team-a/web"
    assert logs[0]["parameterVersion"] == 5
    assert logs[0]["errors"] == list(loaded.errors)
    assert logs[0]["keptLastValid"] is True
    per_rule = next(b for b in emf if blob_dimensions(b) == {"Rule": "team-a/web"})
    assert blob_metrics(per_rule) == {"RuleInvalid": 1.0, "LastValidRuleActive": 1.0}
    fleet = next(b for b in emf if blob_dimensions(b) == {})
    assert blob_metrics(fleet)["RuleInvalid"] == 1.0


def test_evaluation_error_redacts_tokens_and_any_rule_has_no_rule_blob(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = make_sink(per_rule_metrics=("*",))

    sink.evaluation_error("team-a/web", "401 from API with Authorization: Bearer k8s-aws-v1.aHR0cHM6Ly9zdHM")
    sink.evaluation_error("*", "could not load rules: AccessDenied")

    logs, emf = read_lines(capsys)
    assert [log["rule"] for log in logs] == ["team-a/web", "*"]
    assert "aHR0cHM6Ly9zdHM" not in logs[0]["error"]
    assert "<redacted>" in logs[0]["error"]
    assert [blob_dimensions(b) for b in emf] == [{"Rule": "team-a/web"}]
    assert blob_metrics(emf[0]) == {"EvaluationErrors": 1.0}


def test_flush_writes_fleet_aggregates_and_shard_ticks_then_resets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = make_sink(shard=0)
    # "a": one metric failed and the rule is held at maxReplicas; "b": clean and in range.
    sink.decision(make_record(rule="a"), make_decision(), make_rule("a"), full=True)
    sink.decision(
        make_record(rule="b"),
        make_decision(limited=False, queue_error=False, fallback=True),
        make_rule("b"),
        full=False,
    )
    sink.evaluation_error("c", "timeout")
    sink.tick_finished({"slot": "000000000001"}, 1.25, ran=True)
    sink.tick_finished({"slot": "000000000002", "dropped": "late"}, 0.0, ran=False)
    capsys.readouterr()

    sink.flush()
    sink.flush()

    _, emf = read_lines(capsys)
    assert len(emf) == 3
    fleet, shard, second = emf
    # Alarms cannot SEARCH, so fleet-wide aggregates carry no per-shard or per-rule dimension.
    assert blob_dimensions(fleet) == {}
    assert blob_metrics(fleet) == {
        "RuleInvalid": 0.0,
        # a's evaluation with a failed metric + c's failed evaluation: one per evaluation
        "EvaluationErrors": 2.0,
        "FallbackActive": 1.0,
        "RulesAtMaxReplicas": 1.0,
    }
    # One sample per slot that ran: the "no tick" alarm counts them; a dropped slot has none.
    assert blob_dimensions(shard) == {"Shard": "0"}
    assert blob_metrics(shard) == {"TickDuration": 1250.0}
    assert blob_units(shard)["TickDuration"] == "Milliseconds"
    # Counters restart after a flush; TickDuration appears only when a slot ran.
    assert blob_metrics(second) == {
        "RuleInvalid": 0.0,
        "EvaluationErrors": 0.0,
        "FallbackActive": 0.0,
        "RulesAtMaxReplicas": 0.0,
    }
    assert set(blob_metrics(fleet)) | set(blob_metrics(shard)) == set(FLEET_METRICS)


def test_by_default_no_per_rule_metric_whatever_the_number_of_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = make_sink(shard=1)
    for i in range(20):
        sink.decision(make_record(rule=f"r{i}"), make_decision(), make_rule(f"r{i}"), full=True)
        sink.rule_invalid(LoadedRule(f"bad{i}", f"/p/bad{i}", 1, None, ("broken",)))
        sink.evaluation_error(f"r{i}", "timeout")
    sink.tick_finished({"slot": "000000000001"}, 0.2, ran=True)
    sink.flush()

    _, emf = read_lines(capsys)
    dimensions = [blob_dimensions(b) for b in emf]
    assert dimensions == [{}, {"Shard": "1"}]
    names = {name for b in emf for name in blob_metrics(b)}
    assert names == set(FLEET_METRICS)
    assert not names & (set(PER_RULE_METRICS) - set(FLEET_METRICS))


def test_compact_decisions_ride_on_the_one_tick_line(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink()
    sink.decision(make_record(rule="a"), make_decision(queue_error=False), make_rule("a"), full=False)
    sink.decision(make_record(rule="b"), make_decision(), make_rule("b"), full=True)

    sink.tick_finished({"slot": "000000000007", "evaluated": 2}, 0.25, ran=True)

    logs, _ = read_lines(capsys)
    assert [log["event"] for log in logs] == ["decision", "tick"]
    assert logs[0]["rule"] == "b"
    tick = logs[1]
    assert tick["slot"] == "000000000007" and tick["evaluated"] == 2
    # [rule, current, desired, [each metric's current value]]
    assert tick["rules"] == [["a", 3, 7, [233.5, 10.0]]]
    assert sink.bytes_logged["tick"] > 0 and sink.bytes_logged["decision"] > sink.bytes_logged["tick"]


def test_reserved_and_secret_keys_do_not_break_or_leak(capsys: pytest.CaptureFixture[str]) -> None:
    sink = make_sink()
    record = make_record(name="shadows LogRecord.name", headers={"Authorization": "AWS4-HMAC-SHA256 abc"})

    sink.decision(record, make_decision(), make_rule(), full=True)

    logs, _ = read_lines(capsys)
    assert logs[0]["name_"] == "shadows LogRecord.name"
    assert logs[0]["headers"] == {"Authorization": "<redacted>"}


def test_metrics_disabled_env_prints_no_emf(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    sink = make_sink()

    sink.decision(make_record(), make_decision(), make_rule(), full=True)
    sink.flush()

    logs, emf = read_lines(capsys)
    assert len(logs) == 1
    assert emf == []


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1h rejected", "aHR0cHM6Ly9zdHMuYW1h"),
        ("GET https://sts?X-Amz-Security-Token=IQoJb3JpZ2lu&X-Amz-Signature=abcdef", "IQoJb3JpZ2lu"),
        ("Authorization: Bearer eyJhbGciOi.payload", "eyJhbGciOi.payload"),
    ],
    ids=["eks_token", "presigned_url", "bearer"],
)
def test_redact_text_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_many_compact_entries_are_split_over_numbered_tick_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from ampscaler.adapters.audit import TICK_LINE_RULES

    sink = make_sink()
    for i in range(TICK_LINE_RULES + 3):
        sink.decision(make_record(rule=f"r{i}"), make_decision(), make_rule("r"), full=False)

    sink.tick_finished({"slot": "000000000015"}, 0.5, ran=True)

    logs, _ = read_lines(capsys)
    assert [(log["event"], log["part"], len(log["rules"])) for log in logs] == [
        ("tick", 1, TICK_LINE_RULES),
        ("tick", 2, 3),
    ]
    assert max(len(json.dumps(log)) for log in logs) < 256 * 1024
