"""Time and duration arguments of ``ampscaler backtest`` and its progress bar."""

from __future__ import annotations

import io

import pytest

from ampscaler.cli.backtest import TextProgress, parse_duration, parse_time

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("15", 15), ("1m", 60), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("1w", 604800)],
)
def test_parse_duration_accepts_prometheus_units(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "h", "1h 30m", "-"])
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-24h", NOW - 86400),
        ("now-1h30m", NOW - 5400),
        ("1699990000", 1_699_990_000),
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T23:13:20+01:00", NOW),
        ("2023-11-14T22:13:20", NOW),  # no zone: UTC
    ],
)
def test_parse_time_accepts_rfc3339_unix_and_relative(text, expected):
    assert parse_time(text, NOW) == expected


def test_parse_time_rejects_garbage():
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", NOW)


def test_text_progress_draws_a_bar_and_ends_the_line():
    out = io.StringIO()
    bar = TextProgress(out, "fetch", enabled=True, width=10)
    bar(5, 10)
    bar(10, 10)
    bar.close()
    text = out.getvalue()
    assert "[#####.....]  50.0% 5/10" in text
    assert text.endswith("[##########] 100.0% 10/10\n")


def test_text_progress_disabled_writes_nothing():
    out = io.StringIO()
    bar = TextProgress(out, "fetch", enabled=False)
    bar(1, 2)
    bar.close()
    assert out.getvalue() == ""


def _run(argv: list[str]) -> tuple[int, str, str]:
    import argparse

    from ampscaler.cli import backtest

    parser = argparse.ArgumentParser(prog="ampscaler")
    backtest.register(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = backtest.run(parser.parse_args(argv), stdout=out, stderr=err, clock=lambda: NOW)
    return code, out.getvalue(), err.getvalue()


def _rule_doc(name: str) -> str:
    return (
        "apiVersion: ampscaler/v1\n"
        f"name: {name}\n"
        "target: {cluster: c, namespace: n, kind: Deployment, name: web}\n"
        "minReplicas: 1\nmaxReplicas: 5\n"
        "metrics:\n- {name: q, type: External, query: sum(q), target: {type: Value, value: 1}}\n"
    )


def test_backtest_without_a_metrics_source_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    rule = tmp_path / "r.yaml"
    rule.write_text(_rule_doc("r"))
    code, out, err = _run(["backtest", str(rule), "--from", "-1h"])
    assert (code, out) == (1, "")
    assert (
        err
        == "ampscaler backtest: error: rule 'r' names no Prometheus; give --url PROM_URL or --workspace-id ID\n"
    )


def test_backtest_file_with_two_rules_is_refused(tmp_path):
    rule = tmp_path / "two.yaml"
    rule.write_text(_rule_doc("a") + "---\n" + _rule_doc("b"))
    code, _, err = _run(["backtest", str(rule), "--from", "-1h", "--url", "http://127.0.0.1:9"])
    assert code == 1
    assert "holds 2 rules (a, b)" in err


def test_backtest_relative_from_parses_as_a_value_not_an_option(tmp_path):
    rule = tmp_path / "r.yaml"
    rule.write_text(_rule_doc("r"))
    code, _, err = _run(
        ["backtest", str(rule), "--from", "-1h30m", "--to", "-1h", "--url", "http://127.0.0.1:9"]
    )
    # Parsed fine; fails only at the (closed) port.
    assert code == 1 and "query" in err.lower()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--from", "yesterday"], "not a time: 'yesterday'"),
        (["--from", "-1h", "--to", "tomorrow"], "not a time: 'tomorrow'"),
        (["--from", "-1h", "--step", "15x"], "not a duration: '15x'"),
        (["--from", "-1h", "--step", "0s"], "--step must be at least"),
        (["--from", "-1h", "--to", "-2h"], "must be after start"),
        (["--from", "-1h", "--startup-delay", "soon"], "not a duration: 'soon'"),
    ],
    ids=["bad-from", "bad-to", "bad-step", "zero-step", "from-after-to", "bad-startup-delay"],
)
def test_backtest_bad_argument_exits_2_with_one_line(tmp_path, options, message):
    """docs/cli.md: exit 2 for bad arguments, before any rule is read or endpoint contacted."""
    rule = tmp_path / "r.yaml"
    rule.write_text(_rule_doc("r"))
    code, out, err = _run(["backtest", str(rule), *options, "--url", "http://127.0.0.1:9"])
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("ampscaler backtest: error: ")
    assert message in err
