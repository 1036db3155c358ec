"""The operator's rule policy as read from the environment, by the functions and by the CLI alike."""

from __future__ import annotations

import pytest

from ampscaler.errors import AmpscalerError
from ampscaler.policy import REPLAY_POLICY, RulePolicy, is_system_namespace
from ampscaler.settings import Settings


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            {"MAX_REPLICAS_CEILING": "0"},
            "MAX_REPLICAS_CEILING='0': must be an integer between 1 and 2147483647",
        ),
        ({"MAX_REPLICAS_CEILING": "1e3"}, "MAX_REPLICAS_CEILING='1e3': must be an integer"),
        ({"MAX_REPLICAS_CEILING": "²"}, "must be an integer"),
        ({"MAX_REPLICAS_CEILING": str(2**31)}, "must be an integer between 1 and 2147483647"),
        ({"MAX_REPLICAS_CEILING": "9" * 5000}, "must be an integer between 1 and 2147483647"),
    ],
)
def test_settings_bad_ceiling_is_a_configuration_error(env: dict[str, str], error: str) -> None:
    with pytest.raises(AmpscalerError, match="invalid function configuration") as info:
        Settings.from_env(env)
    assert error in str(info.value)


def test_settings_policy_defaults_and_lists_are_trimmed_and_deduplicated() -> None:
    assert (Settings().allowed_namespaces, Settings().allowed_clusters, Settings().max_replicas_ceiling) == (
        (),
        (),
        1000,
    )
    settings = Settings.from_env(
        {
            "ALLOWED_NAMESPACES": " shop, web,,shop ",
            "ALLOWED_CLUSTERS": "prod",
            "MAX_REPLICAS_CEILING": " 50 ",
        }
    )
    assert (settings.allowed_namespaces, settings.allowed_clusters, settings.max_replicas_ceiling) == (
        ("shop", "web"),
        ("prod",),
        50,
    )


def test_policy_from_env_matches_settings() -> None:
    env = {"ALLOWED_NAMESPACES": "a,b", "ALLOWED_CLUSTERS": "c", "MAX_REPLICAS_CEILING": "7"}
    settings = Settings.from_env(env)
    assert RulePolicy.from_env(env) == RulePolicy(
        settings.allowed_namespaces, settings.allowed_clusters, settings.max_replicas_ceiling
    )


@pytest.mark.parametrize(
    ("namespace", "system"),
    [
        ("kube-system", True),
        ("kube-public", True),
        ("kube-node-lease", True),
        ("amazon-cloudwatch", True),
        ("amazon-guardduty", True),
        ("amazon", False),
        ("kube-systemd", False),
        ("default", False),
    ],
)
def test_is_system_namespace(namespace: str, system: bool) -> None:
    assert is_system_namespace(namespace) is system


def test_replay_policy_checks_no_targets() -> None:
    assert REPLAY_POLICY.namespace_problem("kube-system") is None
    assert REPLAY_POLICY.cluster_problem("anything") is None


def test_cli_rule_store_judges_rules_by_the_environments_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    import boto3

    from ampscaler.cli.common import CommandError, rule_store

    args = argparse.Namespace(prefix="/ampscaler/rules/", cluster=None)
    session = boto3.Session(region_name="us-east-1")
    monkeypatch.setenv("ALLOWED_NAMESPACES", "web")
    monkeypatch.setenv("MAX_REPLICAS_CEILING", "20")
    assert rule_store(args, session).policy == RulePolicy(
        allowed_namespaces=("web",), max_replicas_ceiling=20
    )
    monkeypatch.setenv("MAX_REPLICAS_CEILING", "many")
    with pytest.raises(CommandError, match="MAX_REPLICAS_CEILING='many'"):
        rule_store(args, session)
