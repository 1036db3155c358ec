"""RuleStore on SSM Parameter Store: one String parameter per rule under a prefix, via Powertools Parameters.

Powertools' ``SSMProvider.get_multiple`` returns values only, and ampscaler needs each parameter's
``Version`` for the audit trail, so ``VersionedSSMProvider`` implements the backend half
(``_get_multiple``) of Powertools' provider pattern keeping the version, while the base class keeps
owning the cache (with an explicit max age and an injectable clock).

A rule that turns invalid keeps running at its last valid version. That version is remembered in
memory, and on a cold start it is recovered from the parameter's own history
(``GetParameterHistory``, newest first): SSM already keeps the last 100 versions, so no second
store has to stay consistent with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.base import ExpirableValue
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from ampscaler.errors import AmpscalerError, RuleInvalidError
from ampscaler.model import Rule
from ampscaler.policy import RulePolicy
from ampscaler.ports import LoadedRule
from ampscaler.rule import parse_rule, show
from ampscaler.settings import DEFAULT_RULE_PREFIX, Settings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SECONDS = 60
# GetParametersByPath returns at most 10 parameters per page; GetParameterHistory at most 50.
_HISTORY_PAGE_SIZE = 50
TAG_TARGET = "target"
TAG_CLUSTER = "cluster"


class RuleStoreError(AmpscalerError):
    """Reading or writing rules in Parameter Store failed; the message names the IAM action when denied."""


@dataclass(frozen=True)
class SsmParameter:
    """One parameter as GetParametersByPath / GetParameter return it, version included."""

    name: str
    value: str
    version: int


class VersionedSSMProvider(SSMProvider):
    """Powertools ``SSMProvider`` whose ``get_multiple`` values are ``SsmParameter`` (value + version).

    Parameters
    ----------
    boto3_client:
        SSM client; None builds one from ``boto3_session`` (or a new session) like ``SSMProvider``.
    boto3_session:
        Session used when no client is given.
    clock:
        Wall clock for cache expiry (default ``datetime.now``, as in Powertools' ``BaseProvider``).
    """

    def __init__(
        self,
        boto3_client: SSMClient | None = None,
        boto3_session: Any = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        super().__init__(boto3_session=boto3_session, boto3_client=boto3_client)
        self._clock = clock

    # Powertools types values as str; this backend returns SsmParameter, which the base class
    # caches and hands back untouched as long as no transform is requested.
    def _get_multiple(  # type: ignore[override]
        self,
        path: str,
        decrypt: bool | None = None,
        recursive: bool = False,
        **sdk_options: Any,
    ) -> dict[str, SsmParameter]:
        """Every parameter under ``path`` keyed by its name relative to ``path``, all pages.

        Mirrors ``SSMProvider._get_multiple`` (same paginator, same name stripping) and keeps
        ``Version``.
        """
        sdk_options["Path"] = path
        sdk_options["WithDecryption"] = bool(decrypt)
        sdk_options["Recursive"] = recursive
        found: dict[str, SsmParameter] = {}
        for page in self.client.get_paginator("get_parameters_by_path").paginate(**sdk_options):
            for parameter in page.get("Parameters", []):
                full = parameter["Name"]
                relative = full[len(path) :] if full.startswith(path) else full
                found[relative.lstrip("/")] = SsmParameter(
                    full, parameter["Value"], int(parameter["Version"])
                )
        return found

    def has_not_expired_in_cache(self, key: tuple[Any, ...]) -> bool:
        """Same rule as ``BaseProvider`` but on the injected clock."""
        return key in self.store and self.store[key].ttl >= self._clock()

    def add_to_cache(self, key: tuple[Any, ...], value: Any, max_age: int) -> None:
        """Same rule as ``BaseProvider`` (max_age <= 0 never caches) but on the injected clock."""
        if max_age <= 0:
            return
        self.store[key] = ExpirableValue(value, self._clock() + timedelta(seconds=max_age))


@dataclass(frozen=True)
class _Valid:
    version: int
    rule: Rule


class SsmRuleStore:
    """ports.RuleStore over every parameter under ``prefix`` (recursive, paginated, cached).

    The rule name is the parameter name relative to the prefix (``/ampscaler/rules/team-a/web``
    -> ``team-a/web``).

    Parameters
    ----------
    prefix:
        Parameter hierarchy holding the rules; starts and ends with ``/``.
    cache_seconds:
        Max age of the cached parameter list (Powertools ``max_age``); 0 reads SSM on every call.
    default_cluster:
        Cluster for rules whose target omits it (``Settings.cluster_name``).
    client:
        SSM client; None creates one on first use from the default session, so it honours
        ``AWS_ENDPOINT_URL`` and the environment at that moment.
    recover_from_history:
        When a rule's current version is invalid and no valid version was seen by this instance,
        look for the newest valid version in ``GetParameterHistory`` (cold starts).
    clock:
        Wall clock for cache expiry; tests inject one.
    policy:
        The operator's blast radius (allowed namespaces/clusters, replica ceiling); a rule
        outside it is invalid like any other. None is the default policy.
    """

    def __init__(
        self,
        prefix: str = DEFAULT_RULE_PREFIX,
        *,
        cache_seconds: int = DEFAULT_CACHE_SECONDS,
        default_cluster: str | None = None,
        client: SSMClient | None = None,
        recover_from_history: bool = True,
        clock: Callable[[], datetime] = datetime.now,
        policy: RulePolicy | None = None,
    ) -> None:
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"rule prefix {prefix!r} must start and end with '/'")
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self.default_cluster = default_cluster
        self.recover_from_history = recover_from_history
        self._client = client
        self._clock = clock
        self.policy = policy or RulePolicy()
        self._provider: VersionedSSMProvider | None = None
        # Parsed results by rule name, reused while the parameter version is unchanged.
        self._parsed: dict[str, LoadedRule] = {}
        self._last_valid: dict[str, _Valid] = {}

    @classmethod
    def from_settings(cls, settings: Settings, client: SSMClient | None = None) -> SsmRuleStore:
        """The store the scaler and validator functions use: prefix, cache age and cluster from settings."""
        return cls(
            settings.rule_prefix,
            cache_seconds=settings.rule_cache_seconds,
            default_cluster=settings.cluster_name,
            client=client,
            policy=RulePolicy(
                allowed_namespaces=settings.allowed_namespaces,
                allowed_clusters=settings.allowed_clusters,
                max_replicas_ceiling=settings.max_replicas_ceiling,
            ),
        )

    @property
    def provider(self) -> VersionedSSMProvider:
        """The Powertools provider, created (with its client) on first use."""
        if self._provider is None:
            self._provider = VersionedSSMProvider(boto3_client=self._client, clock=self._clock)
        return self._provider

    @property
    def client(self) -> SSMClient:
        """The SSM client (the provider's)."""
        return self.provider.client

    @property
    def _path(self) -> str:
        # The prefix as given, trailing slash included: SSM accepts it, and the request's IAM
        # resource (parameter/ampscaler/rules/) then matches a policy on parameter${RulePrefix}*.
        return self.prefix

    def parameter_name(self, name: str) -> str:
        """Full parameter name of rule ``name`` (a full name under the prefix is returned as is)."""
        if name.startswith(self.prefix):
            return name
        return self.prefix + name.lstrip("/")

    def rule_name(self, parameter: str) -> str:
        """Rule name of parameter ``parameter``: its name relative to the prefix."""
        if not parameter.startswith(self.prefix):
            raise ValueError(f"parameter {parameter!r} is not under the rule prefix {self.prefix!r}")
        return parameter[len(self.prefix) :]

    def load_rules(self, *, owns: Callable[[str], bool] | None = None) -> Sequence[LoadedRule]:
        """Every rule under the prefix, sorted by name; invalid ones carry ``errors``.

        Each rule is parsed on its own: one document's failure, whatever it is, is that rule's
        errors and never stops the others.

        Parameters
        ----------
        owns
            When given, only rules whose name satisfies ``owns(name)`` are parsed and returned
            (the shard's own rules): the others cost nothing beyond the listing.

        Raises
        ------
        RuleStoreError
            Parameter Store could not be read (the message names the IAM action when denied).
        """
        try:
            raw = self.provider.get_multiple(self._path, max_age=self.cache_seconds, recursive=True)
        except GetParameterError as exc:
            raise _store_error("ssm:GetParametersByPath", self._arn(self.prefix + "*"), exc) from exc
        parameters = cast("dict[str, SsmParameter]", raw)
        names = sorted(parameters) if owns is None else sorted(n for n in parameters if owns(n))
        loaded = [self._load(name, parameters[name]) for name in names]
        # A deleted parameter disappears, and so does its remembered last valid version: a rule
        # created again under the same name starts from scratch.
        for gone in set(self._parsed) - set(parameters):
            self._parsed.pop(gone, None)
            self._last_valid.pop(gone, None)
        return loaded

    def load_rule(self, name: str) -> LoadedRule | None:
        """One rule read straight from SSM (no cache): the rule validator's view. None if it does not exist.

        ``name`` is a rule name or the full parameter name.

        Raises
        ------
        RuleStoreError
            Parameter Store could not be read.
        """
        parameter = self.parameter_name(name)
        try:
            got = self.client.get_parameter(Name=parameter, WithDecryption=False)["Parameter"]
        except ClientError as exc:
            if _code(exc) == "ParameterNotFound":
                return None
            raise _store_error("ssm:GetParameter", self._arn(parameter), exc) from exc
        except BotoCoreError as exc:
            raise _store_error("ssm:GetParameter", self._arn(parameter), exc) from exc
        return self._load(
            self.rule_name(parameter), SsmParameter(parameter, got["Value"], int(got["Version"]))
        )

    def put_rule(
        self,
        name: str,
        document: str | Mapping[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """Validate ``document`` and write it as rule ``name`` (String, overwriting); return the new version.

        The parameter is tagged ``target`` (``Kind/namespace/name``) and ``cluster`` from the parsed
        rule, plus ``tags``. PutParameter refuses ``Tags`` together with ``Overwrite``, so the tags
        are applied with AddTagsToResource after the write.

        Raises
        ------
        RuleInvalidError
            The document is not a valid rule; nothing is written.
        RuleStoreError
            Parameter Store refused the write.
        """
        parameter = self.parameter_name(name)
        rule_name = self.rule_name(parameter)
        rule = parse_rule(document, name=rule_name, default_cluster=self.default_cluster)
        value = document if isinstance(document, str) else json.dumps(document, indent=2)
        all_tags = {
            TAG_TARGET: f"{rule.target.kind}/{rule.target.namespace}/{rule.target.name}",
            TAG_CLUSTER: rule.target.cluster,
            **(tags or {}),
        }
        try:
            written = self.client.put_parameter(
                Name=parameter,
                Value=value,
                Type="String",
                Overwrite=True,
                # Standard (4 KB) unless the document needs Advanced (8 KB): SSM picks per write.
                Tier="Intelligent-Tiering",
                Description=f"ampscaler rule {rule_name}",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error("ssm:PutParameter", self._arn(parameter), exc) from exc
        try:
            self.client.add_tags_to_resource(
                ResourceType="Parameter",
                ResourceId=parameter,
                Tags=[{"Key": k, "Value": v} for k, v in sorted(all_tags.items())],
            )
        except (ClientError, BotoCoreError) as exc:
            raise _store_error("ssm:AddTagsToResource", self._arn(parameter), exc) from exc
        # The next load_rules must see the write even inside the cache window.
        self.provider.clear_cache()  # type: ignore[no-untyped-call]
        return int(written["Version"])

    def delete_rule(self, name: str) -> bool:
        """Delete rule ``name``; False if it did not exist.

        Raises
        ------
        RuleStoreError
            Parameter Store refused the delete.
        """
        parameter = self.parameter_name(name)
        try:
            self.client.delete_parameter(Name=parameter)
        except ClientError as exc:
            if _code(exc) == "ParameterNotFound":
                return False
            raise _store_error("ssm:DeleteParameter", self._arn(parameter), exc) from exc
        except BotoCoreError as exc:
            raise _store_error("ssm:DeleteParameter", self._arn(parameter), exc) from exc
        self.provider.clear_cache()  # type: ignore[no-untyped-call]
        return True

    def running_version(self, name: str) -> int | None:
        """Version of rule ``name`` that runs: the newest valid one this store has seen, else None."""
        known = self._last_valid.get(name)
        return known.version if known else None

    def clear_cache(self) -> None:
        """Forget the cached parameter list so the next ``load_rules`` reads SSM."""
        self.provider.clear_cache()  # type: ignore[no-untyped-call]

    # -- internals -------------------------------------------------------------------------

    def _load(self, name: str, parameter: SsmParameter) -> LoadedRule:
        cached = self._parsed.get(name)
        if cached is not None and cached.version == parameter.version:
            return cached
        loaded = self._parse(name, parameter)
        self._parsed[name] = loaded
        return loaded

    def _parse(self, name: str, parameter: SsmParameter) -> LoadedRule:
        try:
            rule = parse_rule(
                parameter.value, name=name, default_cluster=self.default_cluster, policy=self.policy
            )
        except RuleInvalidError as exc:
            errors = tuple(exc.errors) or (str(exc),)
        except Exception as exc:
            # A parser crash on one odd document must not stop the other rules.
            logger.exception("rule %s: parser failed on version %d", name, parameter.version)
            errors = (
                f"(document): the document could not be parsed ({type(exc).__name__}: {show(str(exc))})",
            )
        else:
            known = self._last_valid.get(name)
            if known is None or known.version <= parameter.version:
                self._last_valid[name] = _Valid(parameter.version, rule)
            return LoadedRule(name, parameter.name, parameter.version, rule)
        fallback = self._last_valid.get(name)
        if fallback is None and self.recover_from_history:
            fallback = self._newest_valid_in_history(name, parameter)
            if fallback is not None:
                self._last_valid[name] = fallback
        return LoadedRule(
            name,
            parameter.name,
            parameter.version,
            fallback.rule if fallback else None,
            errors,
        )

    def _newest_valid_in_history(self, name: str, current: SsmParameter) -> _Valid | None:
        """Newest version older than ``current`` that parses, from GetParameterHistory."""
        try:
            versions = list(self._history(current.name))
        except (ClientError, BotoCoreError) as exc:
            # Recovery is best effort: without it the invalid rule is skipped, which is safe.
            logger.warning(
                "rule %s: cannot read parameter history to recover the last valid version: %s",
                name,
                _describe(exc, "ssm:GetParameterHistory", self._arn(current.name)),
            )
            return None
        for older in sorted(versions, key=lambda p: p.version, reverse=True):
            if older.version >= current.version:
                continue
            try:
                rule = parse_rule(
                    older.value, name=name, default_cluster=self.default_cluster, policy=self.policy
                )
            except Exception:
                continue
            return _Valid(older.version, rule)
        return None

    def _history(self, parameter: str) -> Iterable[SsmParameter]:
        paginator = self.client.get_paginator("get_parameter_history")
        pages = paginator.paginate(
            Name=parameter, WithDecryption=False, PaginationConfig={"PageSize": _HISTORY_PAGE_SIZE}
        )
        for page in pages:
            for entry in page.get("Parameters", []):
                yield SsmParameter(parameter, entry.get("Value", ""), int(entry.get("Version", 0)))

    def _arn(self, resource: str) -> str:
        try:
            region = self.client.meta.region_name
        except Exception:  # the ARN is only a hint inside an error message
            region = "<region>"
        return f"arn:aws:ssm:{region}:<account>:parameter{resource}"


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _describe(exc: BaseException, action: str, arn: str) -> str:
    # Powertools wraps backend errors in GetParameterError(str(exc)); the ClientError is the context.
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ClientError | BotoCoreError):
        cause = cause.__cause__ or cause.__context__
    code = _code(cause) if cause is not None else ""
    detail = str(cause if cause is not None else exc)
    if code in ("AccessDeniedException", "AccessDenied"):
        return f"{detail}; the function's role needs {action} on {arn}"
    return detail


def _store_error(action: str, arn: str, exc: BaseException) -> RuleStoreError:
    return RuleStoreError(f"Parameter Store {action.split(':', 1)[1]} failed: {_describe(exc, action, arn)}")
