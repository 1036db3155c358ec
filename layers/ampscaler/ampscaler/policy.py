"""The operator's blast radius for rules: which namespaces and clusters a rule may scale, and how far.

Rules are written by many teams through ssm:PutParameter; the operator bounds what any of them
can do with ``ALLOWED_NAMESPACES``, ``ALLOWED_CLUSTERS`` and ``MAX_REPLICAS_CEILING``. A rule
outside the policy is invalid like any other invalid rule, with a message naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

SYSTEM_NAMESPACES: Final = ("kube-system", "kube-public", "kube-node-lease")
# EKS add-ons (amazon-cloudwatch, amazon-guardduty, ...) live in amazon-* namespaces.
SYSTEM_NAMESPACE_PREFIX: Final = "amazon-"
DEFAULT_MAX_REPLICAS_CEILING: Final = 1000
# Kubernetes replica counts are int32.
MAX_INT32: Final = 2**31 - 1

ALLOWED_NAMESPACES_ENV: Final = "ALLOWED_NAMESPACES"
ALLOWED_CLUSTERS_ENV: Final = "ALLOWED_CLUSTERS"
MAX_REPLICAS_CEILING_ENV: Final = "MAX_REPLICAS_CEILING"
POLICY_ENV_VARS: Final = (ALLOWED_NAMESPACES_ENV, ALLOWED_CLUSTERS_ENV, MAX_REPLICAS_CEILING_ENV)


def is_system_namespace(namespace: str) -> bool:
    """``kube-system``, ``kube-public``, ``kube-node-lease`` and every ``amazon-*`` namespace."""
    return namespace in SYSTEM_NAMESPACES or namespace.startswith(SYSTEM_NAMESPACE_PREFIX)


def split_list(raw: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of non-empty, stripped names (order kept, duplicates dropped)."""
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class RulePolicy:
    """What the operator allows rules to do.

    Parameters
    ----------
    allowed_namespaces
        Namespaces a target may be in; empty allows any namespace except the system ones.
        A system namespace is allowed only when listed here explicitly.
    allowed_clusters
        Clusters a target may be in; empty allows any.
    max_replicas_ceiling
        Upper bound of minReplicas, maxReplicas, fallback.replicas and Pods policy values.
    enforce_targets
        False skips the namespace and cluster checks: a replay (``ampscaler decide``) evaluates a
        rule that was admitted elsewhere.
    """

    allowed_namespaces: tuple[str, ...] = ()
    allowed_clusters: tuple[str, ...] = ()
    max_replicas_ceiling: int = DEFAULT_MAX_REPLICAS_CEILING
    enforce_targets: bool = True

    def namespace_problem(self, namespace: str) -> str | None:
        """Why ``namespace`` is refused, or None when it is allowed."""
        if not self.enforce_targets or namespace in self.allowed_namespaces:
            return None
        if self.allowed_namespaces:
            listed = ", ".join(self.allowed_namespaces)
            return f"namespace {namespace!r} is not in {ALLOWED_NAMESPACES_ENV} ({listed})"
        if is_system_namespace(namespace):
            return (
                f"namespace {namespace!r} is a system namespace; rules may scale it only when "
                f"{ALLOWED_NAMESPACES_ENV} lists it explicitly"
            )
        return None

    def cluster_problem(self, cluster: str) -> str | None:
        """Why ``cluster`` is refused, or None when it is allowed."""
        if not self.enforce_targets or not self.allowed_clusters or cluster in self.allowed_clusters:
            return None
        return f"cluster {cluster!r} is not in {ALLOWED_CLUSTERS_ENV} ({', '.join(self.allowed_clusters)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RulePolicy:
        """The policy from the three environment variables (``ampscaler validate`` reads it this way).

        Raises
        ------
        ValueError
            ``MAX_REPLICAS_CEILING`` is not an integer between 1 and 2**31-1.
        """
        ceiling_raw = env.get(MAX_REPLICAS_CEILING_ENV, "").strip()
        return cls(
            allowed_namespaces=split_list(env.get(ALLOWED_NAMESPACES_ENV, "")),
            allowed_clusters=split_list(env.get(ALLOWED_CLUSTERS_ENV, "")),
            max_replicas_ceiling=parse_ceiling(ceiling_raw) if ceiling_raw else DEFAULT_MAX_REPLICAS_CEILING,
        )


def parse_ceiling(raw: str) -> int:
    """``MAX_REPLICAS_CEILING`` as an int in [1, 2**31-1].

    Raises
    ------
    ValueError
        With a message naming the setting.
    """
    text = raw.strip()
    if re.fullmatch(r"[0-9]{1,10}", text) is None or not 1 <= int(text) <= MAX_INT32:
        raise ValueError(
            f"{MAX_REPLICAS_CEILING_ENV}={raw[:20]!r}: must be an integer between 1 and {MAX_INT32}"
        )
    return int(text)


# Replays (``ampscaler decide``) check numbers only against the format's hard limits.
REPLAY_POLICY: Final = RulePolicy(max_replicas_ceiling=MAX_INT32, enforce_targets=False)
