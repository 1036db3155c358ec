"""SsmRuleStore against a moto server over HTTP (boto3 reaches it through AWS_ENDPOINT_URL)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.stub import Stubber

from ampscaler.adapters.audit import PowertoolsAuditSink
from ampscaler.adapters.rules_ssm import RuleStoreError, SsmRuleStore
from ampscaler.errors import RuleInvalidError
from ampscaler.rule import parse_rule

pytestmark = pytest.mark.integration

PREFIX = "/ampscaler/rules/"


def rule_doc(name: str = "web", max_replicas: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"namespace": "shop", "kind": "Deployment", "name": name},
        "minReplicas": 1,
        "maxReplicas": max_replicas,
        "metrics": [
            {
                "name": "rps",
                "type": "External",
                "query": "sum(rate(http_requests_total[1m]))",
                "target": {"type": "AverageValue", "averageValue": 100},
            }
        ],
    }


INVALID = json.dumps({"apiVersion": "ampscaler/v1", "minReplicas": 5, "maxReplicas": 2})


def put(name: str, value: str | dict[str, Any], overwrite: bool = True) -> int:
    text = value if isinstance(value, str) else json.dumps(value)
    answer = boto3.client("ssm").put_parameter(Name=name, Value=text, Type="String", Overwrite=overwrite)
    return int(answer["Version"])


class Clock:
    """Injected wall clock for the parameter cache."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(aws_env: dict[str, str]) -> SsmRuleStore:
    return SsmRuleStore(PREFIX, cache_seconds=0, default_cluster="prod")


def test_load_rules_nested_paths_over_many_pages(aws_env: dict[str, str]) -> None:
    names = [f"team-a/web-{i:02d}" for i in range(12)] + [f"team-b/batch/job-{i:02d}" for i in range(11)]
    for name in names:
        put(PREFIX + name, rule_doc(name.rsplit("/", 1)[-1]))
    put("/ampscaler/other/not-a-rule", rule_doc())
    put("/ampscaler/rules-sibling", rule_doc())
    client = boto3.client("ssm")
    calls: list[str] = []
    client.meta.events.register("before-call.ssm.GetParametersByPath", lambda **_: calls.append("page"))
    store = SsmRuleStore(PREFIX, cache_seconds=0, default_cluster="prod", client=client)

    loaded = store.load_rules()

    assert [lr.name for lr in loaded] == sorted(names)
    assert len(calls) >= 3, "23 parameters at 10 per page need at least 3 pages"
    first = loaded[0]
    assert first.parameter == PREFIX + first.name
    assert first.version == 1
    assert first.errors == ()
    assert first.rule is not None
    assert first.rule.name == first.name
    assert first.rule.target.cluster == "prod"


def test_load_rules_invalid_rule_reported_others_kept(
    store: SsmRuleStore, capsys: pytest.CaptureFixture[str]
) -> None:
    put(PREFIX + "good", rule_doc("good"))
    put(PREFIX + "bad", rule_doc("bad"))
    put(PREFIX + "bad", INVALID)

    loaded = {lr.name: lr for lr in store.load_rules()}

    assert loaded["good"].rule is not None
    assert loaded["good"].errors == ()
    bad = loaded["bad"]
    assert bad.version == 2
    assert bad.parameter == PREFIX + "bad"
    assert any(e.startswith("target") for e in bad.errors)
    assert any(e.startswith("metrics") for e in bad.errors)
    # The audit sink logs it with name, version and every error.
    sink = PowertoolsAuditSink(Logger(service=f"ssm-test-{uuid.uuid4().hex}"))
    capsys.readouterr()
    sink.rule_invalid(bad)
    log = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ruleInvalid"' in line)
    assert (log["rule"], log["parameter"], log["parameterVersion"]) == ("bad", PREFIX + "bad", 2)
    assert log["errors"] == list(bad.errors)


def test_load_rules_bad_edit_keeps_last_valid_until_fixed(store: SsmRuleStore) -> None:
    put(PREFIX + "web", rule_doc(max_replicas=10))
    first = store.load_rules()[0]
    assert first.rule is not None

    put(PREFIX + "web", INVALID)
    broken = store.load_rules()[0]

    assert broken.version == 2
    assert broken.errors
    assert broken.rule == first.rule
    assert store.running_version("web") == 1

    put(PREFIX + "web", rule_doc(max_replicas=20))
    fixed = store.load_rules()[0]
    assert fixed.version == 3
    assert fixed.errors == ()
    assert fixed.rule is not None
    assert fixed.rule.max_replicas == 20
    assert store.running_version("web") == 3


def test_load_rules_cold_start_recovers_last_valid_from_history(aws_env: dict[str, str]) -> None:
    put(PREFIX + "web", rule_doc(max_replicas=7))
    put(PREFIX + "web", rule_doc(max_replicas=8))
    put(PREFIX + "web", INVALID)
    put(PREFIX + "web", "not: [valid")

    cold = SsmRuleStore(PREFIX, cache_seconds=0, default_cluster="prod").load_rules()[0]
    without_history = SsmRuleStore(
        PREFIX, cache_seconds=0, default_cluster="prod", recover_from_history=False
    ).load_rules()[0]

    assert cold.version == 4
    assert cold.errors
    assert cold.rule is not None
    assert cold.rule.max_replicas == 8, "the newest valid version, not the first"
    assert without_history.errors
    assert without_history.rule is None


def test_load_rules_invalid_without_valid_history_is_skipped(store: SsmRuleStore) -> None:
    put(PREFIX + "web", INVALID)

    loaded = store.load_rules()[0]

    assert loaded.rule is None
    assert loaded.errors


def test_load_rules_deleted_parameter_disappears_with_its_last_valid(store: SsmRuleStore) -> None:
    put(PREFIX + "web", rule_doc())
    put(PREFIX + "api", rule_doc("api"))
    assert [lr.name for lr in store.load_rules()] == ["api", "web"]

    boto3.client("ssm").delete_parameter(Name=PREFIX + "web")
    assert [lr.name for lr in store.load_rules()] == ["api"]

    # Re-created invalid: no stale last-valid version comes back from before the delete.
    put(PREFIX + "web", INVALID)
    again = {lr.name: lr for lr in store.load_rules()}["web"]
    assert again.version == 1
    assert again.rule is None


def test_load_rules_cache_age_honoured_with_injected_clock(aws_env: dict[str, str]) -> None:
    clock = Clock()
    cached = SsmRuleStore(PREFIX, cache_seconds=60, default_cluster="prod", clock=clock)
    uncached = SsmRuleStore(PREFIX, cache_seconds=0, default_cluster="prod", clock=clock)
    put(PREFIX + "web", rule_doc(max_replicas=10))
    assert cached.load_rules()[0].version == 1
    assert uncached.load_rules()[0].version == 1

    put(PREFIX + "web", rule_doc(max_replicas=11))
    clock.now += timedelta(seconds=59)
    assert cached.load_rules()[0].version == 1, "within max_age the cached list is served"
    assert uncached.load_rules()[0].version == 2, "max_age=0 reads SSM every time"

    clock.now += timedelta(seconds=2)
    assert cached.load_rules()[0].version == 2, "after max_age SSM is read again"


def test_load_rule_by_name_or_parameter_and_missing(store: SsmRuleStore) -> None:
    put(PREFIX + "team-a/web", rule_doc())
    put(PREFIX + "team-a/web", INVALID)

    by_name = store.load_rule("team-a/web")
    by_parameter = store.load_rule(PREFIX + "team-a/web")

    assert by_name is not None
    assert by_parameter is not None
    assert (by_name.name, by_name.version) == ("team-a/web", 2)
    assert by_name.errors
    assert by_name.rule is not None, "the validator also reports the version that keeps running"
    assert by_parameter.name == "team-a/web"
    assert store.load_rule("team-a/missing") is None


def test_put_rule_overwrites_and_tags(store: SsmRuleStore) -> None:
    doc = rule_doc()

    assert store.put_rule("team-a/web", doc) == 1
    assert store.put_rule("team-a/web", json.dumps(rule_doc(max_replicas=12))) == 2

    client = boto3.client("ssm")
    tags = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=PREFIX + "team-a/web")[
        "TagList"
    ]
    assert {t["Key"]: t["Value"] for t in tags} == {"target": "Deployment/shop/web", "cluster": "prod"}
    stored = client.get_parameter(Name=PREFIX + "team-a/web")["Parameter"]
    assert stored["Type"] == "String"
    assert parse_rule(stored["Value"], name="team-a/web", default_cluster="prod").max_replicas == 12


def test_put_rule_invalid_document_writes_nothing(store: SsmRuleStore) -> None:
    bad = copy.deepcopy(rule_doc())
    bad["maxReplicas"] = 0

    with pytest.raises(RuleInvalidError) as info:
        store.put_rule("web", bad)

    assert info.value.errors
    assert store.load_rule("web") is None


def test_put_rule_then_load_rules_sees_it_inside_cache_window(aws_env: dict[str, str]) -> None:
    store = SsmRuleStore(PREFIX, cache_seconds=300, default_cluster="prod")
    assert store.load_rules() == []

    store.put_rule("web", rule_doc())

    assert [lr.name for lr in store.load_rules()] == ["web"]


def test_load_rules_access_denied_names_the_iam_action(aws_env: dict[str, str]) -> None:
    client = boto3.client("ssm")
    store = SsmRuleStore(PREFIX, cache_seconds=0, client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_parameters_by_path",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: ssm:GetParametersByPath",
            http_status_code=400,
        )
        with pytest.raises(RuleStoreError) as info:
            store.load_rules()

    message = str(info.value)
    assert "ssm:GetParametersByPath" in message
    assert "parameter/ampscaler/rules/*" in message


def test_store_rejects_prefix_without_slashes() -> None:
    with pytest.raises(ValueError, match="start and end with"):
        SsmRuleStore("ampscaler/rules")


# --------------------------------------------------------------------------- untrusted documents

BOMB = (
    "apiVersion: ampscaler/v1\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True))
    + "maxReplicas: *h\n"
)


def test_load_rules_owns_parses_only_the_shards_rules(aws_env: dict[str, str]) -> None:
    for name in ("a-web", "b-web", "a-batch"):
        put(PREFIX + name, rule_doc(name))
    # A bomb owned by another shard costs this shard nothing: it is not parsed at all.
    put(PREFIX + "b-bomb", BOMB)
    store = SsmRuleStore(PREFIX, cache_seconds=0, default_cluster="prod")
    seen: list[str] = []

    def owns(name: str) -> bool:
        seen.append(name)
        return name.startswith("a-")

    loaded = store.load_rules(owns=owns)

    assert [lr.name for lr in loaded] == ["a-batch", "a-web"]
    assert all(lr.rule is not None for lr in loaded)
    assert sorted(seen) == ["a-batch", "a-web", "b-bomb", "b-web"]
    assert store.running_version("b-web") is None, "a rule of another shard was parsed"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(
            BOMB, "(document): invalid YAML: line 2 column 4: YAML anchors (&a) are not allowed", id="bomb"
        ),
        pytest.param(
            "apiVersion: ampscaler/v1\nmaxReplicas: 5\nmaxReplicas: 500\n",
            '(document): invalid YAML: line 3 column 1: duplicate key "maxReplicas"',
            id="duplicate-key",
        ),
        pytest.param("[" * 4000 + "]" * 4000, "(document): nested deeper than 64 levels", id="deep"),
        pytest.param('{"maxReplicas": ' + "9" * 400 + "}", "400-digit integer is too large", id="huge-int"),
        pytest.param('{"name": "a\\ud800"}', "lone surrogate", id="lone-surrogate"),
    ],
)
def test_load_rules_hostile_document_is_that_rules_error_only(
    store: SsmRuleStore, value: str, error: str
) -> None:
    put(PREFIX + "good", rule_doc("good"))
    put(PREFIX + "hostile", value)

    loaded = {lr.name: lr for lr in store.load_rules()}

    assert loaded["good"].rule is not None and loaded["good"].errors == ()
    assert loaded["hostile"].rule is None
    assert len(loaded["hostile"].errors) == 1 and error in loaded["hostile"].errors[0]


def test_load_rules_parser_crash_is_that_rules_error_only(
    store: SsmRuleStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in the parser (impossible to provoke from a document any more) stays one rule's failure.
    import ampscaler.adapters.rules_ssm as rules_ssm

    real = parse_rule

    def flaky(value: str, **kwargs: Any) -> Any:
        if kwargs.get("name") == "crash":
            raise MemoryError("simulated")
        return real(value, **kwargs)

    monkeypatch.setattr(rules_ssm, "parse_rule", flaky)
    put(PREFIX + "good", rule_doc("good"))
    put(PREFIX + "crash", rule_doc("crash"))

    loaded = {lr.name: lr for lr in store.load_rules()}

    assert loaded["good"].rule is not None
    assert loaded["crash"].errors == (
        '(document): the document could not be parsed (MemoryError: "simulated")',
    )


def test_load_rules_bom_is_accepted_as_validate_accepts_it(store: SsmRuleStore) -> None:
    put(PREFIX + "web", "\ufeff" + json.dumps(rule_doc("web")))
    (loaded,) = store.load_rules()
    assert loaded.errors == ()


@pytest.mark.parametrize(
    ("env", "doc", "error"),
    [
        pytest.param(
            {},
            {"target": {"namespace": "kube-system", "kind": "Deployment", "name": "coredns"}},
            "target.namespace: namespace 'kube-system' is a system namespace; rules may scale it only when "
            "ALLOWED_NAMESPACES lists it explicitly",
            id="system-namespace",
        ),
        pytest.param(
            {"ALLOWED_NAMESPACES": "web, api"},
            {},
            "target.namespace: namespace 'shop' is not in ALLOWED_NAMESPACES (web, api)",
            id="namespace-not-listed",
        ),
        pytest.param(
            {"ALLOWED_CLUSTERS": "dev"},
            {},
            "target: cluster 'prod' is not in ALLOWED_CLUSTERS (dev)",
            id="cluster-not-listed",
        ),
        pytest.param(
            {"MAX_REPLICAS_CEILING": "50"},
            {"maxReplicas": 2**64},
            "maxReplicas: must be at most 50 (the operator's MAX_REPLICAS_CEILING), got 18446744073709551616",
            id="ceiling",
        ),
        pytest.param(
            {},
            {"maxReplicas": 1001},
            "maxReplicas: must be at most 1000 (the operator's MAX_REPLICAS_CEILING), got 1001",
            id="default-ceiling",
        ),
    ],
)
def test_rule_outside_the_operators_policy_is_invalid_in_store_and_validator(
    aws_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    doc: dict[str, Any],
    error: str,
) -> None:
    from ampscaler.settings import Settings
    from ampscaler.validation import RuleValidatorApp

    settings = Settings.from_env({"CLUSTER_NAME": "prod", **env})
    put(PREFIX + "web", {**rule_doc("web"), **doc})

    (loaded,) = SsmRuleStore.from_settings(settings).load_rules()
    assert loaded.rule is None
    assert loaded.errors == (error,)

    logger = Logger(service=f"validator-test-{uuid.uuid4().hex}")
    store = SsmRuleStore.from_settings(settings)
    store.cache_seconds = 0
    app = RuleValidatorApp(store, PowertoolsAuditSink(logger), logger)
    verdict = app.handle({"detail": {"name": PREFIX + "web", "operation": "Update"}})
    assert (verdict["status"], verdict["errors"]) == ("invalid", [error])
