"""template.yaml: least privilege, alarms, dashboard, schedules, state table, layer, and the SAM tools.

The template is parsed with cfn-lint's decoder (it understands !Ref/!Sub/!If), then checked as
data. ``cfn-lint`` and ``sam validate --lint`` run as subprocesses; ``sam build`` (marker ``sam``)
builds the real python3.13/arm64 artifacts and imports the handler from them alone.
"""

from __future__ import annotations

import ast
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
import yaml
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


# What each AWS call in the code needs, one explicit table: boto3 client methods (and paginator
# operation names), Powertools parameter-provider calls, and requests signed by hand. A call maps
# to every action that may govern it; e.g. DynamoDB transactions are authorized by the item actions
# inside them (developerguide/transaction-apis-iam.html), so transact_write_items admits those.
CALL_ACTIONS: dict[str, frozenset[str]] = {
    "get_parameters_by_path": frozenset({"ssm:GetParametersByPath"}),
    "get_parameter": frozenset({"ssm:GetParameter"}),
    "get_parameters": frozenset({"ssm:GetParameters"}),
    "get_parameter_history": frozenset({"ssm:GetParameterHistory"}),
    "put_parameter": frozenset({"ssm:PutParameter"}),
    "delete_parameter": frozenset({"ssm:DeleteParameter"}),
    "add_tags_to_resource": frozenset({"ssm:AddTagsToResource"}),
    # Powertools SSMProvider.get_multiple / .get and the module-level helpers.
    "get_multiple": frozenset({"ssm:GetParametersByPath"}),
    "get_parameters_by_name": frozenset({"ssm:GetParameters", "ssm:GetParameter"}),
    "get_item": frozenset({"dynamodb:GetItem"}),
    "put_item": frozenset({"dynamodb:PutItem"}),
    "update_item": frozenset({"dynamodb:UpdateItem"}),
    "delete_item": frozenset({"dynamodb:DeleteItem"}),
    "batch_get_item": frozenset({"dynamodb:BatchGetItem"}),
    "batch_write_item": frozenset({"dynamodb:BatchWriteItem"}),
    "transact_get_items": frozenset({"dynamodb:TransactGetItems", "dynamodb:GetItem"}),
    "transact_write_items": frozenset(
        {
            "dynamodb:TransactWriteItems",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        }
    ),
    "send_message": frozenset({"sqs:SendMessage"}),
    "send_message_batch": frozenset({"sqs:SendMessage"}),
    "describe_cluster": frozenset({"eks:DescribeCluster"}),
    "put_metric_data": frozenset({"cloudwatch:PutMetricData"}),
}
# Requests signed by hand (requests-aws4auth): the signing service names the API.
SIGNED_SERVICE_ACTIONS = {"aps": frozenset({"aps:QueryMetrics"})}
# Not called by the code: the Lambda service writes the function's own logs with its role.
RUNTIME_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
# Not called by the code either: an event source mapping polls its queue with the function's role.
EVENT_SOURCE_ACTIONS = {
    "SQS": frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"})
}
PACKAGE_ROOT = REPO / "layers" / "ampscaler"
_CALL = re.compile(r"\.(\w+)\(")
_PAGINATOR = re.compile(r"get_paginator\(\s*[\"'](\w+)[\"']")
_SIGNED_SERVICE = re.compile(r"^SERVICE\s*=\s*[\"'](\w+)[\"']", re.M)


def reachable_modules(entry: Path) -> set[Path]:
    """``entry`` and every ampscaler module it imports, transitively (static imports only)."""
    seen: set[Path] = set()
    pending = [entry]
    while pending:
        path = pending.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name == "ampscaler" or name.startswith("ampscaler."):
                    base = PACKAGE_ROOT.joinpath(*name.split("."))
                    pending += [base.with_suffix(".py"), base / "__init__.py"]
    return seen


def actions_used_by(entry: Path) -> set[str]:
    """Every IAM action the code reachable from ``entry`` may need, from CALL_ACTIONS."""
    used = set(RUNTIME_ACTIONS)
    for path in reachable_modules(entry):
        source = path.read_text()
        for name in _CALL.findall(source) + _PAGINATOR.findall(source):
            used |= CALL_ACTIONS.get(name, frozenset())
        if "AWS4Auth(" in source:
            for service in _SIGNED_SERVICE.findall(source):
                used |= SIGNED_SERVICE_ACTIONS[service]
    return used


def role_actions(template: Mapping[str, Any], role: str) -> set[str]:
    props = template["Resources"][role]["Properties"]
    return {
        str(action)
        for policy in props["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        if statement.get("Effect") == "Allow"
        for action in as_list(statement["Action"])
    }


ROLE_ENTRY_POINTS = {
    "ScalerRole": REPO / "functions/scaler/app.py",
    "RuleValidatorRole": REPO / "functions/rule_validator/app.py",
}


def event_source_actions(template: Mapping[str, Any], role: str) -> set[str]:
    """What the event sources of the functions running as ``role`` need from it."""
    needed: set[str] = set()
    for function in resources_of(template, "AWS::Serverless::Function").values():
        props = function["Properties"]
        if props.get("Role") == {"Fn::GetAtt": [role, "Arn"]}:
            for event in (props.get("Events") or {}).values():
                needed |= EVENT_SOURCE_ACTIONS.get(event["Type"], frozenset())
    return needed


@pytest.mark.parametrize("role", sorted(ROLE_ENTRY_POINTS))
def test_iam_grants_only_actions_the_code_calls(template: dict[str, Any], role: str) -> None:
    used = actions_used_by(ROLE_ENTRY_POINTS[role]) | event_source_actions(template, role)
    unused = role_actions(template, role) - used
    assert not unused, f"{role} grants {sorted(unused)}, which no code reachable from its handler calls"


def test_iam_used_actions_are_derived_from_the_calls(tmp_path: Path) -> None:
    """The derivation itself: calls count (directly, via paginators, via imports); others do not."""
    used = actions_used_by(REPO / "functions/scaler/app.py")
    assert {"ssm:GetParametersByPath", "ssm:GetParameterHistory", "dynamodb:UpdateItem"} <= used
    assert {"aps:QueryMetrics", "eks:DescribeCluster"} <= used
    # The scaler's state writes are transactions, which admit any item action inside them.
    assert "dynamodb:TransactWriteItems" in used and "ssm:GetParameters" not in used
    fake = tmp_path / "handler.py"
    fake.write_text(
        "def f(client, sqs):\n"
        "    client.transact_write_items(TransactItems=[])\n"
        "    sqs.send_message(QueueUrl='q', MessageBody='b')\n"
        "    client.get_paginator('batch_get_item')\n"
    )
    derived = actions_used_by(fake)
    assert {"dynamodb:TransactWriteItems", "sqs:SendMessage", "dynamodb:BatchGetItem"} <= derived
    assert "dynamodb:GetItem" not in derived
    assert "ssm:GetParameters" not in actions_used_by(REPO / "functions/rule_validator/app.py")


def test_iam_scheduler_role_invokes_only_the_scaler(template: dict[str, Any]) -> None:
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (statement,) = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == {"Fn::GetAtt": ["ScalerFunction", "Arn"]}
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_access_entry_rbac_mode_maps_a_group_and_grants_nothing_itself(template: dict[str, Any]) -> None:
    entry = template["Resources"]["ScalerAccessEntry"]
    assert entry["Condition"] == "ShouldCreateAccessEntry"
    params = parameter_defaults(template) | {"AWS::Partition": "aws"}
    assert params["AccessMode"] == "rbac", "rbac is the recommended default"
    props = resolve(entry["Properties"], template, params)
    assert props["PrincipalArn"] == {"Fn::GetAtt": ["ScalerRole", "Arn"]}
    assert props["Type"] == "STANDARD"
    assert props["KubernetesGroups"] == [RBAC_GROUP]
    # No access policy: the group's (Cluster)RoleBindings are all the role may do.
    assert props["AccessPolicies"] == "<AWS::NoValue>"  # Ref AWS::NoValue: the property is omitted
    assert not evaluate_condition(
        template, "ShouldCreateAccessEntry", params | {"CreateAccessEntry": "false"}
    )


def test_access_entry_access_policy_mode_is_edit_scoped_to_allowed_namespaces(
    template: dict[str, Any],
) -> None:
    entry = template["Resources"]["ScalerAccessEntry"]
    params = parameter_defaults(template) | {"AWS::Partition": "aws", "AccessMode": "access-policy"}
    props = resolve(entry["Properties"], template, params)
    assert props["KubernetesGroups"] == "<AWS::NoValue>"  # Ref AWS::NoValue: the property is omitted
    (policy,) = props["AccessPolicies"]
    assert policy["PolicyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
    assert policy["AccessScope"] == {"Type": "cluster"}
    scoped = resolve(entry["Properties"], template, params | {"AllowedNamespaces": "shop,batch"})
    assert scoped["AccessPolicies"][0]["AccessScope"] == {
        "Type": "namespace",
        "Namespaces": {"Fn::Split": [",", "shop,batch"]},
    }


# ------------------------------------------------------------------ RBAC manifests (AccessMode=rbac)

RBAC_GROUP = "ampscaler:scalers"
RBAC_MANIFESTS = sorted((REPO / "docs").glob("rbac-*.yaml"))
# Exactly what EksScaleTarget calls (adapters/kube.py): GET/PATCH on the scale subresource of the
# apps kinds, LIST pods, POST (and, for a recorder that aggregates, PATCH) core/v1 events.
MINIMAL_RULES = [
    {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale", "statefulsets/scale", "replicasets/scale"],
        "verbs": ["get", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def manifest_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_rbac_manifests_grant_exactly_what_the_scaler_calls() -> None:
    assert {p.name for p in RBAC_MANIFESTS} >= {
        "rbac-cluster.yaml",
        "rbac-namespaces.yaml",
        "rbac-aws-auth.yaml",
    }
    kube_source = (REPO / "layers/ampscaler/ampscaler/adapters/kube.py").read_text()
    for plural in ("deployments", "statefulsets", "replicasets"):
        assert f'"{plural}"' in kube_source, f"kube.py no longer scales {plural}: trim the ClusterRole"
    for path in RBAC_MANIFESTS:
        documents = manifest_documents(path)
        roles = [d for d in documents if d["kind"] == "ClusterRole"]
        assert len(roles) == 1, path.name
        assert roles[0]["metadata"]["name"] == "ampscaler-scaler"
        assert roles[0]["rules"] == MINIMAL_RULES, path.name
        assert not any(d["kind"] in ("Role", "ClusterRole") and d is not roles[0] for d in documents)
        bindings = [d for d in documents if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
        assert bindings, path.name
        for binding in bindings:
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "ampscaler-scaler",
            }
            assert binding["subjects"] == [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": RBAC_GROUP}
            ]
    namespaced = manifest_documents(REPO / "docs/rbac-namespaces.yaml")
    assert not any(d["kind"] == "ClusterRoleBinding" for d in namespaced)
    assert all(d["metadata"].get("namespace") for d in namespaced if d["kind"] == "RoleBinding")


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


def test_scaler_runs_one_slot_per_invocation_from_the_schedule_and_the_slot_queue(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["ScalerFunction"]["Properties"]
    assert props["Handler"] == "app.lambda_handler"
    assert props["CodeUri"] == "functions/scaler/"
    # A scheduled slot is never replayed by Lambda's async retries.
    assert props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    # No reserved concurrency: the shard fence, not the concurrency limit, keeps slots apart.
    assert "ReservedConcurrentExecutions" not in props
    assert props["MemorySize"] == 256
    # A slot is at most EvaluationIntervalSeconds (60 at most) long; the timeout covers it with room.
    assert props["Timeout"] > template["Parameters"]["EvaluationIntervalSeconds"]["MaxValue"]
    assert props["Environment"]["Variables"]["SLOT_QUEUE_URL"] == {"Ref": "SlotQueue"}
    event = props["Events"]["Slot"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["SlotQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 1
    assert event["Properties"]["MaximumBatchingWindowInSeconds"] == 0
    queue = template["Resources"]["SlotQueue"]["Properties"]
    # A slot message is worthless minutes later; SQS wants a visibility timeout >= the function's.
    assert queue["MessageRetentionPeriod"] <= 300
    assert queue["VisibilityTimeout"] >= props["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True
    validator = template["Resources"]["RuleValidatorFunction"]["Properties"]
    assert validator["Handler"] == "app.lambda_handler"
    assert validator["CodeUri"] == "functions/rule_validator/"


# Set by the template for code another change adds (rule validation against the allow-lists,
# issue 11); listed here so this test does not block on that merge. Remove once they are read.
# Read by ampscaler.policy (through Settings) rather than settings.py itself.
ENV_READ_ELSEWHERE = frozenset({"ALLOWED_NAMESPACES", "ALLOWED_CLUSTERS", "MAX_REPLICAS_CEILING"})


def test_environment_matches_settings_contract(template: dict[str, Any]) -> None:
    from ampscaler.settings import Settings

    env_template = template["Globals"]["Function"]["Environment"]["Variables"]
    params = parameter_defaults(
        template, ClusterName="prod", AmpWorkspaceId="ws-1", **{"AWS::Region": "us-east-1"}
    )
    params |= {"AWS::StackName": "ampscaler"}
    env = {k: str(resolve(v, template, params)) for k, v in env_template.items()}
    env["STATE_TABLE"] = "ampscaler-StateTable-XYZ"  # a Ref to the table resource
    library_source = "\n".join(p.read_text() for p in (REPO / "layers/ampscaler/ampscaler").rglob("*.py"))
    for name in env:
        if not name.startswith("POWERTOOLS_") and name not in ENV_READ_ELSEWHERE:
            assert f'"{name}"' in library_source, f"{name} is not read by the ampscaler library"
    assert env["ALLOWED_NAMESPACES"] == env["ALLOWED_PROMETHEUS_URLS"] == ""
    # No cluster list: only the stack's own cluster.
    assert env["ALLOWED_CLUSTERS"] == "prod"
    assert env["MAX_REPLICAS_CEILING"] == "1000"
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


def test_resource_series_parameters_reach_the_scaler_settings(template: dict[str, Any]) -> None:
    from ampscaler.settings import RESOURCE_SERIES_ENV, Settings

    env_template = template["Resources"]["ScalerFunction"]["Properties"]["Environment"]["Variables"]
    assert set(RESOURCE_SERIES_ENV) <= set(env_template)
    params = parameter_defaults(template)
    env = {name: str(resolve(env_template[name], template, params)) for name in RESOURCE_SERIES_ENV}
    # The template's defaults are the library's: a stack deployed with defaults reads cAdvisor.
    assert Settings.from_env(env).resource_series == Settings().resource_series
    relabelled = params | {"ResourcePodLabel": "pod_name", "ResourceWindowSeconds": "60"}
    env = {name: str(resolve(env_template[name], template, relabelled)) for name in RESOURCE_SERIES_ENV}
    series = Settings.from_env(env).resource_series
    assert (series.pod_label, series.window_seconds) == ("pod_name", 60)


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
        if a["Properties"].get("MetricName") == "TickDuration"
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
    tick = alarm_for(template, "ampscaler", "TickDuration")
    # One sample per slot that ran: none for 3 minutes is the alarm, and so is no data at all.
    assert tick["Statistic"] == "SampleCount"
    assert tick["Period"] * tick["EvaluationPeriods"] == 3 * 60
    assert tick["TreatMissingData"] == "breaching"
    assert tick["ComparisonOperator"] == "LessThanThreshold" and tick["Threshold"] == 1
    alarm_for(template, "AWS/Lambda", "Errors", "ScalerFunction")
    alarm_for(template, "AWS/Lambda", "Throttles", "ScalerFunction")
    duration = template["Resources"]["ScalerDurationAlarm"]["Properties"]
    [stat] = [m["MetricStat"] for m in duration["Metrics"] if "MetricStat" in m]
    assert stat["Metric"]["Namespace"] == "AWS/Lambda" and stat["Metric"]["MetricName"] == "Duration"
    [fraction] = [m for m in duration["Metrics"] if m.get("ReturnData")]
    assert fraction["Expression"] == {"Fn::Sub": "duration / (1000 * ${EvaluationIntervalSeconds})"}
    assert duration["Threshold"] == 0.8


def test_alarms_read_only_the_fixed_fleet_metrics(template: dict[str, Any]) -> None:
    from ampscaler.adapters.audit import FLEET_METRICS

    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if props.get("Namespace") == "ampscaler":
            assert props["MetricName"] in FLEET_METRICS, name


def test_every_log_event_in_queries_and_dashboard_is_one_the_code_logs(template: dict[str, Any]) -> None:
    from ampscaler.adapters.audit import LOG_EVENTS

    texts = [str(w["properties"].get("query", "")) for w in dashboard_body(template)["widgets"]]
    texts += [
        q["Properties"]["QueryString"] for q in resources_of(template, "AWS::Logs::QueryDefinition").values()
    ]
    named: set[str] = set()
    for text in texts:
        named |= set(re.findall(r'event\s*=\s*"([A-Za-z_]+)"', text))
        for group in re.findall(r"event in \[([^\]]*)\]", text):
            named |= set(re.findall(r'"([A-Za-z_]+)"', group))
    assert named and named <= set(LOG_EVENTS), named - set(LOG_EVENTS)


def test_alarms_notify_one_topic_and_never_need_search(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert "SEARCH" not in json.dumps(props.get("Metrics", [])), f"{name}: alarms cannot use SEARCH"
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
        "Slots run and their duration",
        "Errors",
        "Per rule: replicas and metric vs target (latest full record)",
        "Scale events per rule",
        "Scale events over time",
        "Latest decisions",
    }
    slots = json.dumps(titled["Slots run and their duration"]["properties"]["metrics"])
    assert 'MetricName=\\"TickDuration\\"' in slots and "SampleCount" in slots
    assert "EvaluationErrors" in json.dumps(titled["Errors"]["properties"]["metrics"])
    # Per-rule views come from the decision log, so they cost no custom metric.
    for title, fields in {
        "Per rule: replicas and metric vs target (latest full record)": (
            "output.currentReplicas",
            "output.desiredReplicas",
            "output.metrics.0.current",
            "output.metrics.0.target",
            "by rule",
        ),
        "Scale events per rule": ('applied = \\"patched\\"', "by rule"),
        "Scale events over time": ("bin(5m)",),
        "Latest decisions": ("rule", "output.currentReplicas", "output.desiredReplicas", "output.reason"),
    }.items():
        widget = titled[title]
        assert widget["type"] == "log", title
        query = json.dumps(widget["properties"]["query"])
        assert widget["properties"]["query"].startswith("SOURCE '<ScalerLogGroup>'"), title
        for field in fields:
            assert field in query, (title, field)


def test_query_definitions_for_the_three_questions(template: dict[str, Any]) -> None:
    queries = resources_of(template, "AWS::Logs::QueryDefinition")
    names = {resolve(q["Properties"]["Name"], template, {"AWS::StackName": "s"}): q for q in queries.values()}
    assert set(names) == {
        "ampscaler/s/why did RULE scale",
        "ampscaler/s/errors by rule",
        "ampscaler/s/decisions for a target",
        "ampscaler/s/replicas and metric of RULE over time",
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
