"""template.yaml: least privilege, alarms, dashboard, schedules, state table, layer, and the SAM tools.

The template is parsed with cfn-lint's decoder (it understands !Ref/!Sub/!If), then checked as
data. ``cfn-lint`` and ``sam validate --lint`` run as subprocesses; ``sam build`` (marker ``sam``)
builds the real python3.13/arm64 artifacts and imports the handler from them alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
SAM = REPO / ".venv-sam" / "bin" / "sam"
# sam build without Docker needs python3.13 on PATH; pyenv provides it when asked for all three.
PYENV_VERSION = "3.11.7:3.12.1:3.13.0"
LAYER_LIMIT_BYTES = 50 * 1024 * 1024

# IAM statements allowed a "*" resource or action: {(role logical id, statement Sid): reason}.
# Empty on purpose: nothing ampscaler calls needs one (EMF metrics go through logs, the EKS
# token is a presigned sts:GetCallerIdentity, which needs no permission).
WILDCARD_ALLOW_LIST: dict[tuple[str, str], str] = {}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template with intrinsic-function tags into plain data."""
    template, matches = decode(str(path))
    assert not matches, [str(m) for m in matches]
    assert template is not None
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources_of(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def parameter_defaults(template: Mapping[str, Any], **overrides: object) -> dict[str, str]:
    values = {name: str(p.get("Default", f"<{name}>")) for name, p in template["Parameters"].items()}
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def sub(text: str, values: Mapping[str, str]) -> str:
    """Render a Fn::Sub string: ${Name} from ``values``, ${Res.Attr} and unknown names as <Name>."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return values.get(name, f"<{name}>")

    return re.sub(r"\$\{([^}]+)\}", repl, text)


def evaluate_condition(template: Mapping[str, Any], name: str, params: Mapping[str, str]) -> bool:
    """Evaluate a template condition (Equals/Not/Or/And/Condition over parameter Refs)."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return params[node["Ref"]]
        return str(node)

    def cond(node: Any) -> bool:
        (fn, args), *_ = node.items()
        if fn == "Fn::Equals":
            return bool(value(args[0]) == value(args[1]))
        if fn == "Fn::Not":
            return not cond(args[0])
        if fn == "Fn::Or":
            return any(cond(a) for a in args)
        if fn == "Fn::And":
            return all(cond(a) for a in args)
        if fn == "Condition":
            return cond(template["Conditions"][args])
        raise AssertionError(f"unsupported condition function {fn}")

    return cond(template["Conditions"][name])


def resolve(node: Any, template: Mapping[str, Any], params: Mapping[str, str]) -> Any:
    """Resolve Ref-to-parameter, Fn::If and Fn::Sub in ``node`` for the given parameter values."""
    if isinstance(node, list):
        return [resolve(n, template, params) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        name, yes, no = node["Fn::If"]
        return resolve(yes if evaluate_condition(template, name, params) else no, template, params)
    if set(node) == {"Ref"}:
        return params.get(node["Ref"], f"<{node['Ref']}>")
    if set(node) == {"Fn::Sub"}:
        arg = node["Fn::Sub"]
        if isinstance(arg, str):
            return sub(arg, params)
        extra = {k: str(resolve(v, template, params)) for k, v in arg[1].items()}
        return sub(arg[0], {**params, **extra})
    return {k: resolve(v, template, params) for k, v in node.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ IAM


def wildcard_findings(template: Mapping[str, Any]) -> list[str]:
    """Every IAM statement granting "*" (resource or action) or a wildcard account/region/service."""
    findings: list[str] = []
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        for arn in props.get("ManagedPolicyArns", []):
            findings.append(f"{name}: managed policy {arn} (its resources are not reviewed here)")
        if res["Type"] == "AWS::Serverless::Function" and "Policies" in props:
            findings.append(f"{name}: SAM policy templates/managed policies instead of an explicit role")
        documents = []
        if res["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            documents = [props["PolicyDocument"]]
        for doc in documents:
            for index, statement in enumerate(as_list(doc["Statement"])):
                sid = statement.get("Sid", str(index))
                if statement.get("Effect") != "Allow":
                    continue
                problems = []
                for action in as_list(statement.get("Action", [])):
                    if action == "*" or str(action).endswith(":*"):
                        problems.append(f"action {action}")
                if "NotResource" in statement or "NotAction" in statement:
                    problems.append("NotResource/NotAction")
                for resource in as_list(statement.get("Resource", [])):
                    text = (
                        resource["Fn::Sub"]
                        if isinstance(resource, dict) and "Fn::Sub" in resource
                        else resource
                    )
                    if isinstance(text, list):
                        text = text[0]
                    if not isinstance(text, str):
                        continue  # !GetAtt / !Ref of a resource in this stack: a single ARN
                    if text == "*":
                        problems.append("resource *")
                    elif text.startswith("arn:") and "*" in ":".join(text.split(":")[:5]):
                        problems.append(f"resource {text} wildcards the partition/service/region/account")
                if problems and (name, sid) not in WILDCARD_ALLOW_LIST:
                    findings.append(f"{name}/{sid}: {', '.join(problems)}")
    return findings


def test_iam_no_wildcards_outside_allow_list(template: dict[str, Any]) -> None:
    assert wildcard_findings(template) == []
    for key, reason in WILDCARD_ALLOW_LIST.items():
        assert reason.strip(), f"allow-list entry {key} needs a reason"


def test_iam_wildcard_check_flags_star_resource_and_action() -> None:
    bad = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
                    "Policies": [
                        {
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Sid": "A",
                                        "Effect": "Allow",
                                        "Action": "s3:*",
                                        "Resource": "arn:aws:s3:::b",
                                    },
                                    {
                                        "Sid": "B",
                                        "Effect": "Allow",
                                        "Action": "logs:PutLogEvents",
                                        "Resource": "*",
                                    },
                                    {
                                        "Sid": "C",
                                        "Effect": "Allow",
                                        "Action": "eks:DescribeCluster",
                                        "Resource": {"Fn::Sub": "arn:aws:eks:*:${AWS::AccountId}:cluster/x"},
                                    },
                                ]
                            }
                        }
                    ],
                },
            }
        }
    }
    findings = wildcard_findings(bad)
    assert len(findings) == 4, findings
    assert any(f.startswith("R/A") for f in findings)
    assert any(f.startswith("R/B") for f in findings)
    assert any(f.startswith("R/C") for f in findings)


def scaler_statements(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    role = template["Resources"]["ScalerRole"]["Properties"]
    return {s["Sid"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}


def test_iam_scaler_role_grants_each_backend_on_its_own_arn(template: dict[str, Any]) -> None:
    params = parameter_defaults(
        template, ClusterName="prod", AmpWorkspaceId="ws-1", **{"AWS::Region": "eu-west-1"}
    )
    params |= {"AWS::Partition": "aws", "AWS::AccountId": "111122223333"}
    statements = {sid: resolve(s, template, params) for sid, s in scaler_statements(template).items()}
    assert (
        statements["ReadRules"]["Resource"]
        == "arn:aws:ssm:eu-west-1:111122223333:parameter/ampscaler/rules/*"
    )
    assert sorted(statements["ReadRules"]["Action"]) == [
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:GetParameters",
        "ssm:GetParametersByPath",
    ]
    assert statements["QueryMetrics"] == {
        "Sid": "QueryMetrics",
        "Effect": "Allow",
        "Action": "aps:QueryMetrics",
        "Resource": "arn:aws:aps:eu-west-1:111122223333:workspace/ws-1",
    }
    other_region = resolve(
        scaler_statements(template)["QueryMetrics"], template, params | {"AmpRegion": "us-west-2"}
    )
    assert other_region["Resource"] == "arn:aws:aps:us-west-2:111122223333:workspace/ws-1"
    assert statements["FindCluster"]["Resource"] == "arn:aws:eks:eu-west-1:111122223333:cluster/prod"
    assert statements["RuleState"]["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}
    assert statements["OwnLogGroup"]["Resource"] == {"Fn::GetAtt": ["ScalerLogGroup", "Arn"]}
    every_action = {a for s in statements.values() for a in as_list(s["Action"])}
    # Metrics are EMF lines in the log group: no PutMetricData, so no cloudwatch:namespace condition.
    assert not any(a.startswith("cloudwatch:") for a in every_action)


def test_iam_scheduler_role_invokes_only_the_scaler(template: dict[str, Any]) -> None:
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (statement,) = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == {"Fn::GetAtt": ["ScalerFunction", "Arn"]}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_access_entry_edit_policy_cluster_or_namespace_scope(template: dict[str, Any]) -> None:
    entry = template["Resources"]["ScalerAccessEntry"]
    assert entry["Condition"] == "ShouldCreateAccessEntry"
    params = parameter_defaults(template) | {"AWS::Partition": "aws"}
    props = resolve(entry["Properties"], template, params)
    assert props["PrincipalArn"] == {"Fn::GetAtt": ["ScalerRole", "Arn"]}
    (policy,) = props["AccessPolicies"]
    assert policy["PolicyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
    assert policy["AccessScope"] == {"Type": "cluster"}
    scoped = resolve(entry["Properties"], template, params | {"AccessScopeNamespaces": "shop,batch"})
    assert scoped["AccessPolicies"][0]["AccessScope"] == {
        "Type": "namespace",
        "Namespaces": {"Fn::Split": [",", "shop,batch"]},
    }
    assert not evaluate_condition(
        template, "ShouldCreateAccessEntry", params | {"CreateAccessEntry": "false"}
    )


# ------------------------------------------------------------------ functions, layer, env


def test_layer_built_by_sam_for_python313_arm64(template: dict[str, Any]) -> None:
    layer = template["Resources"]["AmpscalerLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/ampscaler/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Layers"] == [{"Ref": "AmpscalerLayer"}]


def test_scaler_drops_late_ticks_and_never_piles_up(template: dict[str, Any]) -> None:
    props = template["Resources"]["ScalerFunction"]["Properties"]
    assert props["Handler"] == "app.lambda_handler"
    assert props["CodeUri"] == "functions/scaler/"
    assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert props["ReservedConcurrentExecutions"] == {"Ref": "ShardCount"}
    assert props["MemorySize"] == 256
    params = parameter_defaults(template)
    assert resolve(props["Timeout"], template, params) == 70
    assert resolve(props["Timeout"], template, params | {"ScheduleRate": "rate(5 minutes)"}) == 310
    validator = template["Resources"]["RuleValidatorFunction"]["Properties"]
    assert validator["Handler"] == "app.lambda_handler"
    assert validator["CodeUri"] == "functions/rule_validator/"


def test_environment_matches_settings_contract(template: dict[str, Any]) -> None:
    from ampscaler.settings import Settings

    env_template = template["Globals"]["Function"]["Environment"]["Variables"]
    params = parameter_defaults(
        template, ClusterName="prod", AmpWorkspaceId="ws-1", **{"AWS::Region": "us-east-1"}
    )
    params |= {"AWS::StackName": "ampscaler"}
    env = {k: str(resolve(v, template, params)) for k, v in env_template.items()}
    env["STATE_TABLE"] = "ampscaler-StateTable-XYZ"  # a Ref to the table resource
    settings_source = (REPO / "layers/ampscaler/ampscaler/settings.py").read_text()
    for name in env:
        if not name.startswith("POWERTOOLS_"):
            assert f'"{name}"' in settings_source, f"{name} is not read by ampscaler.settings"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ampscaler"
    assert env["POWERTOOLS_SERVICE_NAME"] == "ampscaler"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    settings = Settings.from_env(env)
    assert settings.rule_prefix == "/ampscaler/rules/"
    assert settings.amp_region == "us-east-1"
    assert settings.evaluation_interval_seconds == 15
    assert settings.schedule_interval_seconds == 60
    assert settings.shard_count == 1
    assert settings.cluster_name == "prod"
    assert resolve(env_template["AMP_REGION"], template, params | {"AmpRegion": "eu-west-1"}) == "eu-west-1"


def test_log_groups_have_retention_and_each_function_uses_its_own(template: dict[str, Any]) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert set(groups) == {"ScalerLogGroup", "RuleValidatorLogGroup"}
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for name, function in resources_of(template, "AWS::Serverless::Function").items():
        ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert ref in groups, name
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


# ------------------------------------------------------------------ schedules and events


@pytest.mark.parametrize("shards", [1, 2, 3, 4])
def test_one_schedule_and_one_no_tick_alarm_per_shard(template: dict[str, Any], shards: int) -> None:
    params = parameter_defaults(template, ShardCount=shards)

    def active(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {
            n: r
            for n, r in resources.items()
            if "Condition" not in r or evaluate_condition(template, r["Condition"], params)
        }

    schedules = active(resources_of(template, "AWS::Scheduler::Schedule"))
    indexes = sorted(json.loads(s["Properties"]["Target"]["Input"])["shardIndex"] for s in schedules.values())
    assert indexes == list(range(shards))
    tick_alarms = [
        a
        for a in active(resources_of(template, "AWS::CloudWatch::Alarm")).values()
        if a["Properties"].get("MetricName") == "TickCompleted"
    ]
    shards_alarmed = sorted(
        int(d["Value"]) for a in tick_alarms for d in a["Properties"]["Dimensions"] if d["Name"] == "Shard"
    )
    assert shards_alarmed == list(range(shards))


def test_schedules_drop_late_ticks_and_pass_the_slot(template: dict[str, Any]) -> None:
    for name, schedule in resources_of(template, "AWS::Scheduler::Schedule").items():
        target = schedule["Properties"]["Target"]
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}, name
        assert target["Arn"] == {"Fn::GetAtt": ["ScalerFunction", "Arn"]}
        assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleRate"}
        payload = json.loads(target["Input"])
        assert payload["scheduledTime"] == "<aws.scheduler.scheduled-time>"
        assert payload["executionId"] == "<aws.scheduler.execution-id>"


def test_scheduled_event_has_the_schedule_input_shape(template: dict[str, Any]) -> None:
    event = json.loads((REPO / "events/scheduled.json").read_text())
    schedule_input = json.loads(
        template["Resources"]["ScalerScheduleShard0"]["Properties"]["Target"]["Input"]
    )
    assert set(event) == set(schedule_input)
    assert event["shardIndex"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["scheduledTime"])


def pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge pattern matching for the subset the template uses (exact values and prefix)."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not pattern_matches(expected, actual):
                return False
            continue
        ok = False
        for option in expected:
            if isinstance(option, dict) and "prefix" in option:
                ok |= isinstance(actual, str) and actual.startswith(option["prefix"])
            else:
                ok |= actual == option
        if not ok:
            return False
    return True


def test_parameter_store_change_event_reaches_the_validator_only_under_the_prefix(
    template: dict[str, Any],
) -> None:
    rule = template["Resources"]["RuleValidatorFunction"]["Properties"]["Events"]["RuleChanged"]
    assert rule["Type"] == "EventBridgeRule"
    pattern = resolve(rule["Properties"]["Pattern"], template, parameter_defaults(template))
    event = json.loads((REPO / "events/parameter_store_change.json").read_text())
    assert event["detail-type"] == "Parameter Store Change"
    assert event["resources"] == [f"arn:aws:ssm:us-east-1:123456789012:parameter{event['detail']['name']}"]
    assert pattern_matches(pattern, event)
    elsewhere = {**event, "detail": {**event["detail"], "name": "/other/app/setting"}}
    assert not pattern_matches(pattern, elsewhere)


def test_decision_record_carries_the_replayable_decide_contract() -> None:
    record = json.loads((REPO / "events/decision_log_record.json").read_text())
    assert record["event"] == "decision"
    assert {"rule", "parameter", "parameterVersion", "target", "applied", "timings"} <= set(record)
    assert {"rule", "now", "scale", "metrics", "state"} <= set(record["input"])
    assert {
        "desiredReplicas",
        "currentReplicas",
        "action",
        "reason",
        "metrics",
        "conditions",
        "state",
    } <= set(record["output"])


# ------------------------------------------------------------------ state table


def test_state_table_retained_with_pitr_ttl_and_on_demand(template: dict[str, Any]) -> None:
    table = template["Resources"]["StateTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "rule", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "rule", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


# ------------------------------------------------------------------ alarms


def alarm_for(
    template: Mapping[str, Any], namespace: str, metric: str, function: str | None = None
) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("Namespace") != namespace or props.get("MetricName") != metric:
            continue
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        if function is not None and dims.get("FunctionName") != {"Ref": function}:
            continue
        if dims.get("Shard", "0") != "0":
            continue
        found.append(props)
    assert len(found) == 1, f"expected one alarm on {namespace}/{metric} {function or ''}, found {len(found)}"
    return found[0]


def test_every_alarm_from_the_issue_is_present(template: dict[str, Any]) -> None:
    service = [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]
    for metric in ("EvaluationErrors", "RuleInvalid", "FallbackActive"):
        props = alarm_for(template, "ampscaler", metric)
        assert props["Dimensions"] == service, metric
        assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == 0
    limited = alarm_for(template, "ampscaler", "RulesAtMaxReplicas")
    assert limited["Period"] * limited["EvaluationPeriods"] == 15 * 60
    assert limited["DatapointsToAlarm"] == limited["EvaluationPeriods"]
    tick = alarm_for(template, "ampscaler", "TickCompleted")
    assert tick["Period"] * tick["EvaluationPeriods"] == 3 * 60
    assert tick["TreatMissingData"] == "breaching"
    assert tick["ComparisonOperator"] == "LessThanThreshold" and tick["Threshold"] == 1
    alarm_for(template, "AWS/Lambda", "Errors", "ScalerFunction")
    alarm_for(template, "AWS/Lambda", "Throttles", "ScalerFunction")
    duration = alarm_for(template, "AWS/Lambda", "Duration", "ScalerFunction")
    params = parameter_defaults(template)
    timeout_ms = 1000 * resolve(
        template["Resources"]["ScalerFunction"]["Properties"]["Timeout"], template, params
    )
    assert resolve(duration["Threshold"], template, params) == pytest.approx(0.9 * timeout_ms)
    slow = params | {"ScheduleRate": "rate(2 minutes)"}
    slow_timeout_ms = 1000 * resolve(
        template["Resources"]["ScalerFunction"]["Properties"]["Timeout"], template, slow
    )
    assert resolve(duration["Threshold"], template, slow) == pytest.approx(0.9 * slow_timeout_ms)


def test_alarms_notify_one_topic_and_never_need_search(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert "Metrics" not in props, f"{name}: alarms cannot use SEARCH; use a function-level aggregate"
        assert all(d["Name"] != "Rule" for d in props.get("Dimensions", [])), name
        assert "docs/operations.md#" in props["AlarmDescription"], name
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"


def test_every_alarm_runbook_anchor_exists_in_operations_doc(template: dict[str, Any]) -> None:
    operations = (REPO / "docs/operations.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in operations.splitlines()
        if line.startswith("#")
    }
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        anchor = alarm["Properties"]["AlarmDescription"].split("docs/operations.md#")[1].split()[0]
        assert anchor in headings, f"{name}: docs/operations.md has no heading for #{anchor}"


# ------------------------------------------------------------------ dashboard and queries


def dashboard_body(template: Mapping[str, Any]) -> dict[str, Any]:
    raw = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = sub(raw, {"AWS::StackName": "ampscaler", "AWS::Region": "us-east-1", "ClusterName": "prod"})
    body: dict[str, Any] = json.loads(rendered)
    return body


def test_dashboard_has_one_widget_per_listed_view(template: dict[str, Any]) -> None:
    widgets = dashboard_body(template)["widgets"]
    titled = {w["properties"]["title"]: w for w in widgets if "title" in w["properties"]}
    assert set(titled) == {
        "Ticks",
        "Errors",
        "Metric value vs target (per rule)",
        "Current vs desired replicas (per rule)",
        "Scale events (per rule)",
        "Latest decisions",
    }

    def expressions(title: str) -> str:
        return json.dumps(titled[title]["properties"]["metrics"])

    for title, metrics in {
        "Metric value vs target (per rule)": ("MetricValue", "MetricTarget"),
        "Current vs desired replicas (per rule)": ("CurrentReplicas", "DesiredReplicas"),
        "Scale events (per rule)": ("ScaleEvents",),
    }.items():
        text = expressions(title)
        assert text.count("SEARCH(") == len(metrics), title
        for metric in metrics:
            assert f'MetricName=\\"{metric}\\"' in text, (title, metric)
    assert "TickCompleted" in expressions("Ticks")
    assert "EvaluationErrors" in expressions("Errors")
    decisions = titled["Latest decisions"]
    assert decisions["type"] == "log"
    query = decisions["properties"]["query"]
    assert query.startswith("SOURCE '<ScalerLogGroup>'")
    assert 'filter event = "decision"' in query
    for field in ("rule", "output.currentReplicas", "output.desiredReplicas", "output.reason"):
        assert field in query


def test_query_definitions_for_the_three_questions(template: dict[str, Any]) -> None:
    queries = resources_of(template, "AWS::Logs::QueryDefinition")
    names = {resolve(q["Properties"]["Name"], template, {"AWS::StackName": "s"}): q for q in queries.values()}
    assert set(names) == {
        "ampscaler/s/why did RULE scale",
        "ampscaler/s/errors by rule",
        "ampscaler/s/decisions for a target",
    }
    assert 'rule = "RULE"' in names["ampscaler/s/why did RULE scale"]["Properties"]["QueryString"]
    assert "by rule" in names["ampscaler/s/errors by rule"]["Properties"]["QueryString"]
    assert "target.name" in names["ampscaler/s/decisions for a target"]["Properties"]["QueryString"]


def test_outputs_include_arns_table_dashboard_and_first_rule_command(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "ScalerFunctionArn",
        "RuleValidatorFunctionArn",
        "ScalerRoleArn",
        "StateTableName",
        "DashboardUrl",
        "FirstRuleCommand",
    ):
        assert name in outputs
    command = resolve(outputs["FirstRuleCommand"]["Value"], template, parameter_defaults(template))
    assert command.startswith("aws ssm put-parameter ")
    assert "--name /ampscaler/rules/frontend" in command
    assert "--type String" in command


def test_samconfig_environments_use_template_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    assert {"default", "prod"} <= set(config)
    for env in ("default", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        for override in deploy.get("parameter_overrides", []):
            assert override.split("=", 1)[0] in template["Parameters"], override
    assert (
        config["prod"]["global"]["parameters"]["stack_name"]
        != config["default"]["global"]["parameters"]["stack_name"]
    )


# ------------------------------------------------------------------ the tools


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # sam validate/build need a region and no credentials; keep the developer's ~/.aws out.
    env |= {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
        "PYENV_VERSION": PYENV_VERSION,
    }
    return env


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, env=tool_env(), timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    if not SAM.exists():
        pytest.fail(f"{SAM} missing: run scripts/bootstrap.sh (it installs aws-sam-cli in .venv-sam)")
    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=tool_env(),
        cwd=REPO,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def iter_modules(package_dir: Path, package: str) -> Iterator[str]:
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join((package, *parts))


@pytest.mark.sam
def test_sam_build_artifacts_are_complete_and_small(tmp_path: Path) -> None:
    """Build without Docker, then import the handlers and the whole library from the artifacts alone."""
    if not SAM.exists():
        pytest.fail(f"{SAM} missing: run scripts/bootstrap.sh (it installs aws-sam-cli in .venv-sam)")
    env = tool_env()
    python313 = shutil.which("python3.13", path=env["PATH"])
    assert python313, (
        "python3.13 must be on PATH for sam build (pyenv with PYENV_VERSION=" + PYENV_VERSION + ")"
    )
    build_dir = tmp_path / "build"
    build_cwd = tmp_path / "cwd"
    build_cwd.mkdir()
    shutil.copy(REPO / "samconfig.toml", build_cwd)
    result = subprocess.run(
        [
            str(SAM),
            "build",
            "--template-file",
            str(TEMPLATE),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        env=env,
        # sam build puts its dependency cache in .aws-sam/deps under the working directory: run it
        # in tmp_path (with the repository's samconfig.toml, so the build is the one users get).
        cwd=build_cwd,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # The dependency cache went to the test's directory (removed with it), not into the clone.
    assert (build_cwd / ".aws-sam" / "deps").is_dir()
    layer_python = build_dir / "AmpscalerLayer" / "python"
    assert (layer_python / "ampscaler" / "__init__.py").exists()
    # The runtime ships boto3/botocore; the layer must not (it would add ~80 MB).
    assert not (layer_python / "boto3").exists() and not (layer_python / "botocore").exists()
    assert not (layer_python / "devstack").exists()
    layer_bytes = tree_size(build_dir / "AmpscalerLayer")
    print(f"\nlayer unzipped size: {layer_bytes / 1024 / 1024:.1f} MB")
    assert layer_bytes < LAYER_LIMIT_BYTES

    # Stand-in for the runtime's own boto3 (/var/runtime): only boto3, botocore and s3transfer
    # from this environment; everything else must come from the layer.
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir()
    import boto3
    import botocore
    import s3transfer

    for module in (boto3, botocore, s3transfer):
        assert module.__file__ is not None
        (runtime_dir / module.__name__).symlink_to(Path(module.__file__).parent)

    library = list(iter_modules(layer_python / "ampscaler", "ampscaler"))
    for function in ("ScalerFunction", "RuleValidatorFunction"):
        code = textwrap.dedent(
            f"""
            import importlib, sys, time
            sys.path[:0] = [{str(build_dir / function)!r}, {str(layer_python)!r}, {str(runtime_dir)!r}]
            start = time.perf_counter()
            import app
            elapsed = time.perf_counter() - start
            assert callable(app.lambda_handler)
            for name in {library!r}:
                importlib.import_module(name)
            leaked = sorted(
                m.__name__ for m in list(sys.modules.values())
                if getattr(m, "__file__", None) and "site-packages" in m.__file__
            )
            assert not leaked, leaked
            print(f"{{elapsed * 1000:.0f}}")
            """
        )
        # -I: no PYTHONPATH/user site; -S: no site-packages at all, so only the artifacts count.
        run = subprocess.run(
            [python313, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, timeout=120
        )
        assert run.returncode == 0, f"{function}: {run.stdout}\n{run.stderr[-4000:]}"
        print(f"{function}: handler import {run.stdout.strip()} ms from the built artifacts")
