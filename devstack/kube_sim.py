"""A Kubernetes API server simulator over real TLS: /scale, pods, events, bearer tokens, faults.

It follows the Kubernetes API reference for exactly what ampscaler uses: the autoscaling/v1 Scale
subresource of Deployments, StatefulSets, ReplicaSets and custom resources (GET, PATCH with merge,
strategic-merge or JSON patch, PUT) with resourceVersion optimistic concurrency; core/v1 PodList with
equality- and set-based label selectors; core/v1 and events.k8s.io/v1 Event creation; meta/v1 Status
errors with the API server's real reasons and message forms. Workloads own pods that go Pending ->
Running/Ready after a configurable delay, so the demo can show pods becoming Ready.

Tests, ``make demo`` and bench/ share it; it is never shipped in the Lambda layer.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import ipaddress
import itertools
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

JsonDict = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Authentication: EKS IAM tokens as aws-iam-authenticator verifies them
# ---------------------------------------------------------------------------------------------

EKS_TOKEN_PREFIX = "k8s-aws-v1."
_CLUSTER_ID_HEADER = "x-k8s-aws-id"
# aws-iam-authenticator pkg/token/token.go: parameterWhitelist, maxTokenLenBytes, 15-minute validity.
_ALLOWED_STS_PARAMS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}
_MAX_TOKEN_BYTES = 4096
_STS_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")


class TokenRejected(Exception):
    """The bearer token is not acceptable; the message says why (kept in the request log)."""


# Returns the authenticated user name, raises TokenRejected otherwise.
Authenticator = Callable[[str], str]


class EksTokenValidator:
    """Checks ``k8s-aws-v1.`` tokens the way aws-iam-authenticator's ``Verify`` does, minus the STS call.

    Shape checks mirror upstream (prefix, size, unpadded base64url, https, STS host, path ``/``,
    whitelisted parameters, ``Action=GetCallerIdentity``, ``x-k8s-aws-id`` among the signed headers,
    ``X-Amz-Expires`` in 0..900, ``X-Amz-Date`` less than 15 minutes old). When ``secret_keys`` is given,
    the SigV4 signature is recomputed independently (hmac/hashlib, not botocore) with the header
    ``x-k8s-aws-id: <cluster_name>``, which is how STS would prove the token was minted for this cluster.

    Parameters
    ----------
    cluster_name:
        The cluster this server pretends to be; required for signature checks.
    secret_keys:
        Access key id -> secret access key of the principals allowed to sign.
    clock:
        Wall-clock seconds, for the expiry check.
    """

    def __init__(
        self,
        cluster_name: str | None = None,
        *,
        secret_keys: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        max_age_seconds: float = 15 * 60,
        account_id: str = "111122223333",
        role_name: str = "ampscaler-scaler",
    ) -> None:
        if secret_keys and cluster_name is None:
            raise ValueError("signature checks need the cluster_name the token must be signed for")
        self.cluster_name = cluster_name
        self.secret_keys = dict(secret_keys or {})
        self.clock = clock
        self.max_age_seconds = max_age_seconds
        self.account_id = account_id
        self.role_name = role_name

    def __call__(self, token: str) -> str:
        """Validate ``token``; return the user name the API server would see."""
        if len(token) > _MAX_TOKEN_BYTES:
            raise TokenRejected("token is too large")
        if not token.startswith(EKS_TOKEN_PREFIX):
            raise TokenRejected(f"token is missing expected {EKS_TOKEN_PREFIX!r} prefix")
        encoded = token[len(EKS_TOKEN_PREFIX) :]
        if "=" in encoded:
            raise TokenRejected("token is padded; expected unpadded base64url")
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenRejected(f"token is not base64url: {exc}") from exc
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise TokenRejected(f"unexpected scheme {parts.scheme!r} in pre-signed URL")
        if not _STS_HOST.match(parts.netloc):
            raise TokenRejected(f"unexpected hostname {parts.netloc!r} in pre-signed URL")
        if parts.path != "/":
            raise TokenRejected("unexpected path in pre-signed URL")
        raw_pairs = [pair.partition("=") for pair in parts.query.split("&") if pair]
        params: dict[str, str] = {}
        for key, _, value in raw_pairs:
            lowered = unquote(key).lower()
            if lowered not in _ALLOWED_STS_PARAMS:
                raise TokenRejected(f"non-whitelisted query parameter {unquote(key)!r}")
            if lowered in params:
                raise TokenRejected("query parameter with multiple values not supported")
            params[lowered] = unquote(value)
        if params.get("action") != "GetCallerIdentity":
            raise TokenRejected("unexpected action parameter in pre-signed URL")
        signed_headers = params.get("x-amz-signedheaders", "").lower().split(";")
        if _CLUSTER_ID_HEADER not in signed_headers:
            raise TokenRejected(f"client did not sign the {_CLUSTER_ID_HEADER} header in the pre-signed URL")
        try:
            expires = int(params.get("x-amz-expires", ""))
        except ValueError:
            expires = -1
        if not 0 <= expires <= 900:
            raise TokenRejected("invalid X-Amz-Expires parameter in pre-signed URL")
        try:
            signed_at = dt.datetime.strptime(params.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=dt.UTC
            )
        except ValueError as exc:
            raise TokenRejected("X-Amz-Date parameter must be present in pre-signed URL") from exc
        if self.clock() > signed_at.timestamp() + self.max_age_seconds:
            raise TokenRejected(f"X-Amz-Date parameter is expired (15 minute expiration) {signed_at}")
        credential = params.get("x-amz-credential", "")
        access_key = credential.split("/")[0]
        if self.secret_keys:
            self._verify_signature(parts.netloc, raw_pairs, params, signed_headers, access_key)
        return f"arn:aws:sts::{self.account_id}:assumed-role/{self.role_name}/{access_key}"

    def _verify_signature(
        self,
        host: str,
        raw_pairs: list[tuple[str, str, str]],
        params: Mapping[str, str],
        signed_headers: list[str],
        access_key: str,
    ) -> None:
        secret = self.secret_keys.get(access_key)
        if secret is None:
            raise TokenRejected(f"unknown access key {access_key!r}")
        header_values = {"host": host, _CLUSTER_ID_HEADER: self.cluster_name or ""}
        unknown = [name for name in signed_headers if name not in header_values]
        if unknown:
            raise TokenRejected(f"cannot verify signed headers {unknown}")
        # SigV4 canonical request (docs: "Create a canonical request for Signature Version 4").
        query = sorted(
            (quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~"))
            for key, _, value in raw_pairs
            if unquote(key) != "X-Amz-Signature"
        )
        canonical_request = "\n".join(
            [
                "GET",
                "/",
                "&".join(f"{key}={value}" for key, value in query),
                "".join(f"{name}:{header_values[name]}\n" for name in signed_headers),
                ";".join(signed_headers),
                hashlib.sha256(b"").hexdigest(),
            ]
        )
        scope = params["x-amz-credential"].split("/", 1)[1]
        date, region, service, _terminator = scope.split("/")
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                params["x-amz-date"],
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = ("AWS4" + secret).encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("x-amz-signature", "")):
            raise TokenRejected(
                f"signature mismatch (token not signed for cluster {self.cluster_name!r} with {access_key!r})"
            )


class StaticTokenValidator:
    """Accepts a fixed set of tokens, each mapped to a user name; ``revoke`` removes one."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = dict(tokens)
        self._lock = threading.Lock()

    def __call__(self, token: str) -> str:
        """Return the user of ``token`` or raise TokenRejected."""
        with self._lock:
            user = self._tokens.get(token)
        if user is None:
            raise TokenRejected("unknown token")
        return user

    def add(self, token: str, user: str) -> None:
        """Accept ``token`` as ``user`` from now on."""
        with self._lock:
            self._tokens[token] = user

    def revoke(self, token: str) -> None:
        """Stop accepting ``token``."""
        with self._lock:
            self._tokens.pop(token, None)


# ---------------------------------------------------------------------------------------------
# Label selectors (k8s.io/apimachinery/pkg/labels/selector.go)
# ---------------------------------------------------------------------------------------------

SelectorOperator = Literal["=", "==", "!=", "in", "notin", "exists", "!"]


class SelectorError(ValueError):
    """A label selector string that the grammar rejects."""


@dataclass(frozen=True)
class Requirement:
    """One label selector requirement. Upstream: labels.Requirement."""

    key: str
    operator: SelectorOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Upstream: Requirement.Matches (a missing key satisfies ``!=`` and ``notin``)."""
        if self.operator in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if self.operator in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "exists":
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        """Upstream: Requirement.String (values sorted, ``k in (a,b)``, ``!k``)."""
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return "!" + self.key
        joined = ",".join(sorted(self.values))
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({joined})"
        return f"{self.key}{self.operator}{joined}"


_LABEL_KEY = re.compile(
    r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SPECIAL = "=!(),<>"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kinds: id, op, '(', ')', ',', end. Upstream: Lexer.Lex."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in "(),":
            tokens.append((ch, ch))
            i += 1
        elif ch in _SPECIAL:
            for op in ("==", "!=", "=", "!", ">", "<"):
                if text.startswith(op, i):
                    tokens.append(("op", op))
                    i += len(op)
                    break
        else:
            j = i
            while j < len(text) and text[j] not in _SPECIAL and text[j] not in " \t\r\n":
                j += 1
            word = text[i:j]
            tokens.append(("op" if word in ("in", "notin") else "id", word))
            i = j
    tokens.append(("end", ""))
    return tokens


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a label selector string; requirements sorted by key as upstream does.

    Grammar (upstream labels.Parse)::

        <selector-syntax> ::= <requirement> | <requirement> "," <selector-syntax>
        <requirement>     ::= [!] KEY [ <set-based-restriction> | <exact-match-restriction> ]
        <set-based>       ::= "" | ("in" | "notin") "(" VALUE ("," VALUE)* ")"
        <exact-match>     ::= ("=" | "==" | "!=") VALUE

    ``>``/``<`` are not supported (field validation rejects them for label selectors too).

    Raises
    ------
    SelectorError
        With upstream's wording ("unable to parse requirement: found ..., expected: ...").
    """
    tokens = _lex(text)
    pos = 0
    requirements: list[Requirement] = []

    def fail(message: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: {message}")

    while tokens[pos][0] != "end":
        kind, literal = tokens[pos]
        negated = False
        if (kind, literal) == ("op", "!"):
            negated = True
            pos += 1
            kind, literal = tokens[pos]
        # "in"/"notin" are identifiers in key position (upstream ParserContext Values).
        if kind not in ("id", "op") or (kind == "op" and literal not in ("in", "notin")):
            raise fail(f"found '{literal}', expected: identifier")
        key = literal
        if not _LABEL_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            raise fail(f"invalid label key {key!r}")
        pos += 1
        follow_kind, follow = tokens[pos]
        if follow_kind in (",", "end"):
            requirements.append(Requirement(key, "!" if negated else "exists"))
        elif negated:
            raise fail(f"found '{follow}', expected: ',' or 'end of string'")
        elif follow_kind == "op" and follow in ("in", "notin"):
            pos += 1
            if tokens[pos][0] != "(":
                raise fail(f"found '{tokens[pos][1]}' expected: '('")
            pos += 1
            values: set[str] = set()
            expect_value = True
            while tokens[pos][0] != ")":
                tkind, tlit = tokens[pos]
                if tkind in ("id", "op") and tlit not in ("=", "==", "!=", "!", ">", "<") and expect_value:
                    values.add(tlit)
                    expect_value = False
                elif tkind == ",":
                    if expect_value:
                        values.add("")
                    expect_value = True
                else:
                    raise fail(f"found '{tlit}', expected: ',', ')' or identifier")
                pos += 1
            if expect_value:
                values.add("")
            pos += 1
            for value in values:
                if not _LABEL_VALUE.match(value) or len(value) > 63:
                    raise fail(f"invalid label value {value!r}")
            op: SelectorOperator = "in" if follow == "in" else "notin"
            requirements.append(Requirement(key, op, tuple(sorted(values))))
        elif follow_kind == "op" and follow in ("=", "==", "!="):
            pos += 1
            vkind, value = tokens[pos]
            if vkind in (",", "end"):
                value = ""
            elif vkind == "id" or value in ("in", "notin"):
                pos += 1
            else:
                raise fail(f"found '{value}', expected: identifier")
            if not _LABEL_VALUE.match(value) or len(value) > 63:
                raise fail(f"invalid label value {value!r}")
            exact: SelectorOperator = "!=" if follow == "!=" else "==" if follow == "==" else "="
            requirements.append(Requirement(key, exact, (value,)))
        else:
            raise fail(f"found '{follow}', expected: in, notin, =, ==, !=")
        kind, literal = tokens[pos]
        if kind == ",":
            pos += 1
            if tokens[pos][0] == "end":
                raise fail("found '', expected: identifier after ','")
        elif kind != "end":
            raise fail(f"found '{literal}', expected: ',' or 'end of string'")
    return tuple(sorted(requirements, key=lambda r: r.key))


def selector_matches(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    """True when every requirement matches (an empty selector matches everything)."""
    return all(r.matches(labels) for r in requirements)


def format_label_selector(
    match_labels: Mapping[str, str], match_expressions: Sequence[Mapping[str, Any]] = ()
) -> str:
    """A metav1.LabelSelector as the API server serializes it into Scale ``status.selector``.

    Upstream: metav1.FormatLabelSelector(LabelSelectorAsSelector(...)): matchLabels become ``k=v``,
    expressions ``k in (a,b)``/``k notin (a,b)``/``k``/``!k``, all sorted by key.
    """
    requirements = [Requirement(k, "=", (v,)) for k, v in match_labels.items()]
    operators: dict[str, SelectorOperator] = {
        "In": "in",
        "NotIn": "notin",
        "Exists": "exists",
        "DoesNotExist": "!",
    }
    for expression in match_expressions:
        op = operators[str(expression["operator"])]
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(Requirement(str(expression["key"]), op, values))
    return ",".join(str(r) for r in sorted(requirements, key=lambda r: r.key))


# ---------------------------------------------------------------------------------------------
# TLS: a throwaway CA and a server certificate for 127.0.0.1 / localhost
# ---------------------------------------------------------------------------------------------


def _make_tls(directory: Path) -> tuple[bytes, Path, Path]:
    """Generate a CA and a CA-signed server cert; return (ca_pem, cert_path, key_path)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-sim-ca")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / "server.crt"
    key_path = directory / "server.key"
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "ca.crt").write_bytes(ca_pem)
    return ca_pem, cert_path, key_path


# ---------------------------------------------------------------------------------------------
# The simulated cluster
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimContainer:
    """One container of a simulated pod: its name and ``resources.requests`` as quantity strings."""

    name: str = "app"
    requests: Mapping[str, str] = field(default_factory=dict)
    # A restartable init container (a sidecar, ``restartPolicy: Always``) rather than a regular one.
    sidecar: bool = False


# What a pod runs unless told otherwise: one container without requests (BestEffort).
DEFAULT_CONTAINERS: tuple[SimContainer, ...] = (SimContainer(),)


@dataclass(frozen=True)
class SimPod:
    """A pod placed explicitly with ``set_pods`` (the workload controller leaves it alone)."""

    name: str
    labels: Mapping[str, str]
    phase: str = "Running"
    ready: bool = True
    deleting: bool = False
    containers: tuple[SimContainer, ...] = DEFAULT_CONTAINERS
    # Wall times (unix seconds) of status.startTime and the Ready condition's lastTransitionTime;
    # None: the pod's creation time. ``start_time`` of 0 leaves status.startTime out.
    start_time: float | None = None
    ready_transition_time: float | None = None


@dataclass
class _Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    uid: str
    resource_version: str
    created_wall: float
    # Monotonic time at which the pod turns Running and Ready; None: fixed phase/ready below.
    ready_at: float | None
    phase: str = "Pending"
    ready: bool = False
    owner: tuple[str, str, str, str] | None = None
    deleted_wall: float | None = None
    # Monotonic time at which a terminating pod disappears.
    gone_at: float | None = None
    containers: tuple[SimContainer, ...] = DEFAULT_CONTAINERS
    # Wall times of status.startTime (None: no startTime) and of the Ready condition's last
    # transition when the pod is fixed (ready_at None); managed pods derive it from ready_wall.
    start_wall: float | None = None
    ready_transition_wall: float | None = None
    # Wall time at which a managed pod turns Ready.
    ready_wall: float | None = None


@dataclass
class _Workload:
    group: str
    version: str
    plural: str
    kind: str
    namespace: str
    name: str
    uid: str
    replicas: int
    match_labels: dict[str, str]
    match_expressions: list[JsonDict]
    pod_labels: dict[str, str]
    ready_delay_seconds: float
    manage_pods: bool
    resource_version: str
    created_wall: float
    template_hash: str
    next_ordinal: int = 0
    containers: tuple[SimContainer, ...] = DEFAULT_CONTAINERS

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.group, self.plural, self.namespace, self.name)

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as API errors name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class Fault:
    """An injected failure: the next ``count`` requests matching ``method``/``path`` get it.

    ``status`` None with ``latency_seconds`` > 0 only delays the request, which then runs normally.
    ``pad_bytes`` pads the (JSON) answer with that many spaces, streamed so the simulator never
    holds it; ``drip_seconds`` sends the answer ``drip_bytes`` at a time with that pause between
    writes (status line and headers included), so every read returns inside the read timeout.
    """

    status: int | None
    method: str = "*"
    path: str | None = None
    count: int = 1
    latency_seconds: float = 0.0
    message: str | None = None
    hits: int = 0
    pad_bytes: int = 0
    drip_seconds: float = 0.0
    drip_bytes: int = 1
    # False: a dripped answer has no Content-Length and ends when the connection closes.
    declare_length: bool = True

    def matches(self, method: str, path: str) -> bool:
        """Whether a request matches (``path`` is a regular expression searched in the path)."""
        if self.count <= 0:
            return False
        if self.method not in ("*", method):
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it; tokens are kept only as a SHA-256 fingerprint."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    content_type: str | None
    body: Any
    status: int
    user: str | None
    token_sha256: str | None
    auth_error: str | None
    fault: bool
    at: float


_STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_APPS_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet", "replicasets": "ReplicaSet"}
_SCALE_PATH = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)/scale$"
)
_PODS_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$")
_CORE_EVENTS_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")
_EVENTS_V1_PATH = re.compile(r"^/apis/events\.k8s\.io/v1/namespaces/(?P<ns>[^/]+)/events$")


_UNKNOWN_FORMAT = "the body of the request was in an unknown format - accepted media types include: "
_PATCH_TYPES = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
_MUST_BE_NON_NEGATIVE = "must be greater than or equal to 0"


class ApiError(Exception):
    """An error the handler turns into a meta/v1 Status response."""

    def __init__(self, code: int, message: str, details: JsonDict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def status_body(code: int, message: str, details: JsonDict | None = None) -> JsonDict:
    """A meta/v1 Status failure object as the API server returns it."""
    body: JsonDict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _STATUS_REASONS.get(code, "Unknown" if code < 500 else "InternalError"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _rfc3339(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container_object(container: SimContainer) -> JsonDict:
    """A core/v1 Container as the pods list returns it (requests only, as quantity strings)."""
    body: JsonDict = {"name": container.name, "image": "registry.k8s.io/pause:3.10"}
    body["resources"] = {"requests": dict(container.requests)} if container.requests else {}
    return body


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is identical for the Scale object's plain maps)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: JsonDict, operations: Any) -> JsonDict:
    """RFC 6902 JSON patch restricted to object members (add/replace/remove/test)."""
    if not isinstance(operations, list):
        raise ApiError(400, "json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "path" not in operation:
            raise ApiError(400, f"invalid json patch operation {operation!r}")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(operation["path"]).split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent.setdefault(part, {}) if isinstance(parent, dict) else None
            if parent is None:
                raise ApiError(422, f"json patch path {operation['path']} does not exist")
        leaf = parts[-1]
        op = operation.get("op")
        if op in ("add", "replace"):
            parent[leaf] = operation.get("value")
        elif op == "remove":
            parent.pop(leaf, None)
        elif op == "test":
            if parent.get(leaf) != operation.get("value"):
                raise ApiError(
                    422,
                    "the server rejected our request due to an error in our request: "
                    f"testing value {operation['path']} failed",
                )
        else:
            raise ApiError(422, f"Unexpected kind: {op}")
    return doc


class KubeApiSimulator:
    """A threaded HTTPS Kubernetes API simulator on a free loopback port; use as a context manager.

    Parameters
    ----------
    authenticator:
        Called with each bearer token; returns the user name or raises TokenRejected (-> 401).
        Default: ``EksTokenValidator()`` (shape and expiry checks of EKS tokens, no signature).
    default_ready_delay_seconds:
        Seconds a created pod stays Pending before it is Running and Ready (0 for tests; a few
        seconds for the demo). ``add_deployment`` may override it per workload.
    terminate_delay_seconds:
        Seconds a pod removed by a scale-down keeps a deletionTimestamp before it disappears.
    clock:
        Monotonic seconds used for pod readiness (injectable for deterministic tests).
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator | None = None,
        default_ready_delay_seconds: float = 0.0,
        terminate_delay_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
    ) -> None:
        self.authenticator: Authenticator = authenticator or EksTokenValidator()
        self.default_ready_delay_seconds = default_ready_delay_seconds
        self.terminate_delay_seconds = terminate_delay_seconds
        self.clock = clock
        self._host = host
        self._lock = threading.RLock()
        self._rv = itertools.count(1000)
        self._workloads: dict[tuple[str, str, str, str], _Workload] = {}
        # Custom resources that have a /scale subresource: (group, version, plural) -> kind.
        self._custom_resources: dict[tuple[str, str, str], str] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._events: list[JsonDict] = []
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        # (verb, resource, namespace) denied for everyone; "*" matches any namespace.
        self._denied: set[tuple[str, str, str]] = set()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ca_pem = b""
        self._ca_path: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> KubeApiSimulator:
        """Generate the CA and server certificate and start serving on a free port."""
        if self._server is not None:
            return self
        self._tmp = tempfile.TemporaryDirectory(prefix="kube-sim-")
        directory = Path(self._tmp.name)
        self._ca_pem, cert_path, key_path = _make_tls(directory)
        self._ca_path = directory / "ca.crt"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        server = _TlsServer((self._host, 0), _make_handler(self), context)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-sim", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and delete the generated key material."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> KubeApiSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``, the cluster endpoint."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"https://{self._host}:{self._server.server_address[1]}"

    @property
    def ca_pem(self) -> bytes:
        """PEM of the CA that signed the server certificate."""
        if not self._ca_pem:
            raise RuntimeError("simulator not started")
        return self._ca_pem

    @property
    def ca_data(self) -> str:
        """The CA as ``eks:DescribeCluster`` returns it in certificateAuthority.data (base64 PEM)."""
        return base64.b64encode(self.ca_pem).decode("ascii")

    @property
    def ca_path(self) -> str:
        """Path of the CA PEM file (valid while the simulator runs)."""
        if self._ca_path is None:
            raise RuntimeError("simulator not started")
        return str(self._ca_path)

    # -- workloads and pods --------------------------------------------------------------------

    def _next_rv(self) -> str:
        return str(next(self._rv))

    def add_workload(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespace: str,
        name: str,
        replicas: int = 1,
        labels: Mapping[str, str] | None = None,
        *,
        match_expressions: Sequence[Mapping[str, Any]] = (),
        pod_labels: Mapping[str, str] | None = None,
        ready_delay_seconds: float | None = None,
        manage_pods: bool = True,
        containers: Sequence[SimContainer] = DEFAULT_CONTAINERS,
        age_seconds: float = 0.0,
    ) -> None:
        """Add a scalable workload of any group/version/plural/kind with its pods.

        ``labels`` is the selector's matchLabels (default ``{"app": name}``); pods carry those plus
        ``pod_labels``, and run ``containers`` (their requests in ``spec.containers[].resources``).
        With ``manage_pods`` False no pods are created: place them with ``set_pods``. The initial
        pods were created ``age_seconds`` ago (a workload that was already running: its pods'
        startTime and Ready transition lie that far back).
        """
        match_labels = dict(labels) if labels is not None else {"app": name}
        with self._lock:
            if group not in ("apps", ""):
                self._custom_resources[(group, version, plural)] = kind
            workload = _Workload(
                group=group,
                version=version,
                plural=plural,
                kind=kind,
                namespace=namespace,
                name=name,
                uid=str(uuid.uuid4()),
                replicas=replicas,
                match_labels=match_labels,
                match_expressions=[dict(e) for e in match_expressions],
                pod_labels={**match_labels, **(pod_labels or {})},
                ready_delay_seconds=(
                    self.default_ready_delay_seconds if ready_delay_seconds is None else ready_delay_seconds
                ),
                manage_pods=manage_pods,
                resource_version=self._next_rv(),
                created_wall=time.time(),
                template_hash=hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:10],
                containers=tuple(containers),
            )
            self._workloads[workload.key] = workload
            self._reconcile_pods(workload, age_seconds=age_seconds)

    def add_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        labels: Mapping[str, str] | None = None,
        *,
        ready_delay_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Add an apps/v1 Deployment (see ``add_workload`` for the keyword arguments)."""
        self.add_workload(
            "apps", "v1", "deployments", "Deployment", namespace, name, replicas, labels,
            ready_delay_seconds=ready_delay_seconds, **kwargs,
        )  # fmt: skip

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        labels: Mapping[str, str] | None = None,
        *,
        ready_delay_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Add an apps/v1 StatefulSet; its pods are named ``<name>-<ordinal>``."""
        self.add_workload(
            "apps", "v1", "statefulsets", "StatefulSet", namespace, name, replicas, labels,
            ready_delay_seconds=ready_delay_seconds, **kwargs,
        )  # fmt: skip

    def delete_workload(self, plural: str, namespace: str, name: str, group: str = "apps") -> None:
        """Remove a workload and the pods it owns (the next read answers 404)."""
        with self._lock:
            workload = self._workloads.pop((group, plural, namespace, name), None)
            if workload is not None:
                for key in [k for k, p in self._pods.items() if p.owner == workload.key]:
                    del self._pods[key]

    def set_pods(self, namespace: str, pods: Iterable[SimPod]) -> None:
        """Replace every pod of ``namespace`` with ``pods`` (fixed phase/readiness, no owner)."""
        with self._lock:
            for key in [k for k in self._pods if k[0] == namespace]:
                del self._pods[key]
            for pod in pods:
                created = time.time()
                self._pods[(namespace, pod.name)] = _Pod(
                    name=pod.name,
                    namespace=namespace,
                    labels=dict(pod.labels),
                    uid=str(uuid.uuid4()),
                    resource_version=self._next_rv(),
                    created_wall=created,
                    ready_at=None,
                    phase=pod.phase,
                    ready=pod.ready,
                    deleted_wall=time.time() if pod.deleting else None,
                    containers=pod.containers,
                    start_wall=(
                        created
                        if pod.start_time is None
                        else (pod.start_time if pod.start_time > 0 else None)
                    ),
                    ready_transition_wall=(
                        created if pod.ready_transition_time is None else pod.ready_transition_time
                    ),
                )

    def set_replicas(
        self, plural: str, namespace: str, name: str, replicas: int, group: str = "apps"
    ) -> None:
        """Change spec.replicas as another writer would (bumps resourceVersion, reconciles pods)."""
        with self._lock:
            workload = self._get_workload(group, plural, namespace, name)
            workload.replicas = replicas
            workload.resource_version = self._next_rv()
            self._reconcile_pods(workload)

    def touch(self, plural: str, namespace: str, name: str, group: str = "apps") -> str:
        """Bump the workload's resourceVersion (a concurrent writer); returns the new one."""
        with self._lock:
            workload = self._get_workload(group, plural, namespace, name)
            workload.resource_version = self._next_rv()
            return workload.resource_version

    def scale(self, plural: str, namespace: str, name: str, group: str = "apps") -> JsonDict:
        """The workload's Scale object as GET /scale returns it."""
        with self._lock:
            return self._scale_object(self._get_workload(group, plural, namespace, name))

    def pods(self, namespace: str, selector: str = "") -> list[JsonDict]:
        """Pods of ``namespace`` matching ``selector``, as the pods list returns them."""
        requirements = parse_selector(selector)
        with self._lock:
            self._expire_pods()
            return [
                self._pod_object(p)
                for p in sorted(self._pods.values(), key=lambda p: p.name)
                if p.namespace == namespace and selector_matches(requirements, p.labels)
            ]

    def ready_pods(self, namespace: str, selector: str = "") -> list[str]:
        """Names of Running, Ready, non-terminating pods (what the demo sends traffic to)."""
        return [
            p["metadata"]["name"]
            for p in self.pods(namespace, selector)
            if p["status"]["phase"] == "Running"
            and "deletionTimestamp" not in p["metadata"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
        ]

    def _get_workload(self, group: str, plural: str, namespace: str, name: str) -> _Workload:
        workload = self._workloads.get((group, plural, namespace, name))
        if workload is None:
            qualified = f"{plural}.{group}" if group else plural
            raise ApiError(
                404, f'{qualified} "{name}" not found', {"name": name, "group": group, "kind": plural}
            )
        return workload

    def _owned_pods(self, workload: _Workload) -> list[_Pod]:
        return [p for p in self._pods.values() if p.owner == workload.key and p.deleted_wall is None]

    def _reconcile_pods(self, workload: _Workload, *, age_seconds: float = 0.0) -> None:
        """Create or terminate owned pods to match spec.replicas (the ReplicaSet/StatefulSet controller).

        New pods are created ``age_seconds`` in the past (only ``add_workload`` passes it).
        """
        if not workload.manage_pods:
            return
        now = self.clock()
        live = self._owned_pods(workload)
        for _ in range(workload.replicas - len(live)):
            if workload.plural == "statefulsets":
                ordinals = {int(p.name.rsplit("-", 1)[1]) for p in live}
                ordinal = next(i for i in itertools.count() if i not in ordinals)
                name = f"{workload.name}-{ordinal}"
                labels = {**workload.pod_labels, "statefulset.kubernetes.io/pod-name": name}
            else:
                name = f"{workload.name}-{workload.template_hash}-{secrets.token_hex(3)[:5]}"
                labels = {**workload.pod_labels, "pod-template-hash": workload.template_hash}
            created = time.time() - age_seconds
            pod = _Pod(
                name=name,
                namespace=workload.namespace,
                labels=labels,
                uid=str(uuid.uuid4()),
                resource_version=self._next_rv(),
                created_wall=created,
                ready_at=now - age_seconds + workload.ready_delay_seconds,
                owner=workload.key,
                containers=workload.containers,
                # The kubelet acknowledges the (already bound) pod at once; it turns Ready later.
                start_wall=created,
                ready_wall=created + workload.ready_delay_seconds,
            )
            self._pods[(pod.namespace, pod.name)] = pod
            live.append(pod)
        surplus = len(live) - workload.replicas
        if surplus > 0:
            if workload.plural == "statefulsets":
                # StatefulSets remove the highest ordinal first.
                victims = sorted(live, key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
            else:
                # ReplicaSet controller: not-ready pods first, then the newest.
                victims = sorted(live, key=lambda p: (self._is_ready(p, now), -p.created_wall))
            for pod in victims[:surplus]:
                if self.terminate_delay_seconds > 0:
                    pod.deleted_wall = time.time()
                    pod.gone_at = now + self.terminate_delay_seconds
                    pod.resource_version = self._next_rv()
                else:
                    del self._pods[(pod.namespace, pod.name)]

    def _expire_pods(self) -> None:
        now = self.clock()
        for key in [k for k, p in self._pods.items() if p.gone_at is not None and p.gone_at <= now]:
            del self._pods[key]

    def _is_ready(self, pod: _Pod, now: float) -> bool:
        return pod.ready_at <= now if pod.ready_at is not None else pod.ready

    def _phase(self, pod: _Pod, now: float) -> str:
        if pod.ready_at is None:
            return pod.phase
        return "Running" if pod.ready_at <= now else "Pending"

    def _status_replicas(self, workload: _Workload) -> int:
        # status.replicas: non-terminated pods targeted by the workload (matching its selector).
        requirements = parse_selector(
            format_label_selector(workload.match_labels, workload.match_expressions)
        )
        return sum(
            1
            for p in self._pods.values()
            if p.namespace == workload.namespace
            and p.deleted_wall is None
            and p.phase not in ("Succeeded", "Failed")
            and selector_matches(requirements, p.labels)
        )

    def _scale_object(self, workload: _Workload) -> JsonDict:
        self._expire_pods()
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": workload.name,
                "namespace": workload.namespace,
                "uid": workload.uid,
                "resourceVersion": workload.resource_version,
                "creationTimestamp": _rfc3339(workload.created_wall),
            },
            "spec": {"replicas": workload.replicas},
            "status": {
                "replicas": self._status_replicas(workload),
                "selector": format_label_selector(workload.match_labels, workload.match_expressions),
            },
        }

    def _pod_object(self, pod: _Pod) -> JsonDict:
        now = self.clock()
        ready = self._is_ready(pod, now)
        phase = self._phase(pod, now)
        created = _rfc3339(pod.created_wall)
        metadata: JsonDict = {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": pod.resource_version,
            "creationTimestamp": created,
            "labels": dict(pod.labels),
        }
        if pod.owner is not None:
            owner = self._workloads.get(pod.owner)
            if owner is not None:
                metadata["ownerReferences"] = [
                    {
                        "apiVersion": f"{owner.group}/{owner.version}" if owner.group else owner.version,
                        "kind": "ReplicaSet" if owner.plural == "deployments" else owner.kind,
                        "name": (
                            f"{owner.name}-{owner.template_hash}"
                            if owner.plural == "deployments"
                            else owner.name
                        ),
                        "uid": owner.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ]
        if pod.deleted_wall is not None:
            metadata["deletionTimestamp"] = _rfc3339(pod.deleted_wall)
            metadata["deletionGracePeriodSeconds"] = 30
        flag = "True" if ready else "False"
        # lastTransitionTime of Ready/ContainersReady: when the pod last turned Ready (or was
        # created, while it has not yet); a fixed pod's is set explicitly.
        if pod.ready_at is None:
            transition = _rfc3339(pod.ready_transition_wall or pod.created_wall)
        else:
            transition = _rfc3339(
                pod.ready_wall if ready and pod.ready_wall is not None else pod.created_wall
            )
        conditions: list[JsonDict] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
        ]
        if phase != "Pending" or ready:
            conditions.append({"type": "Initialized", "status": "True", "lastTransitionTime": created})
        conditions += [
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": transition},
            {"type": "Ready", "status": flag, "lastTransitionTime": transition},
        ]
        if not ready:
            for condition in conditions[-2:]:
                condition["reason"] = "ContainersNotReady"
        requested = any(c.requests for c in pod.containers)
        status: JsonDict = {
            "phase": phase,
            "conditions": conditions,
            "qosClass": "Burstable" if requested else "BestEffort",
        }
        if pod.start_wall is not None:
            # Set once the kubelet acknowledges the pod, before its images are pulled (API reference).
            status["startTime"] = _rfc3339(pod.start_wall)
        if phase == "Running":
            status["podIP"] = f"10.0.{int(pod.uid[:2], 16)}.{int(pod.uid[2:4], 16)}"
        spec: JsonDict = {
            "containers": [_container_object(c) for c in pod.containers if not c.sidecar],
            "nodeName": "sim-node-1",
        }
        sidecars = [_container_object(c) | {"restartPolicy": "Always"} for c in pod.containers if c.sidecar]
        if sidecars:
            spec["initContainers"] = sidecars
        return {"metadata": metadata, "spec": spec, "status": status}

    # -- events, faults, RBAC, request log -----------------------------------------------------

    def events(
        self, namespace: str | None = None, name: str | None = None, reason: str | None = None
    ) -> list[JsonDict]:
        """Events created so far (both APIs), filtered by namespace / involved object name / reason."""
        with self._lock:
            found = []
            for event in self._events:
                regarding = event.get("involvedObject") or event.get("regarding") or {}
                if namespace is not None and event["metadata"].get("namespace") != namespace:
                    continue
                if name is not None and regarding.get("name") != name:
                    continue
                if reason is not None and event.get("reason") != reason:
                    continue
                found.append(copy.deepcopy(event))
            return found

    def inject(
        self,
        status: int | None = None,
        *,
        method: str = "*",
        path: str | None = None,
        count: int = 1,
        latency_seconds: float = 0.0,
        message: str | None = None,
        pad_bytes: int = 0,
        drip_seconds: float = 0.0,
        drip_bytes: int = 1,
        declare_length: bool = True,
    ) -> Fault:
        """Make the next ``count`` requests matching ``method`` and ``path`` (regex) fail or slow down.

        ``status`` 401/403/404/409/429/5xx answers with the matching Status (real message forms
        where the request names a resource). ``latency_seconds`` delays the response first.
        ``pad_bytes`` makes the answer (error or not) that much larger; ``drip_seconds`` sends it
        ``drip_bytes`` at a time.
        """
        fault = Fault(
            status=status,
            method=method.upper(),
            path=path,
            count=count,
            latency_seconds=latency_seconds,
            message=message,
            pad_bytes=pad_bytes,
            drip_seconds=drip_seconds,
            drip_bytes=drip_bytes,
            declare_length=declare_length,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def deny(self, verb: str, resource: str, namespace: str = "*") -> None:
        """RBAC-style deny: ``verb`` (get/list/patch/update/create) on ``resource`` (e.g.
        ``deployments/scale``, ``pods``, ``events``) answers 403 Forbidden."""
        with self._lock:
            self._denied.add((verb, resource, namespace))

    def allow_all(self) -> None:
        """Drop every deny rule."""
        with self._lock:
            self._denied.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request served so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    # -- request handling (called from handler threads) ----------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    fault.hits += 1
                    return fault
        return None

    def _check_rbac(
        self, user: str, verb: str, group: str, resource: str, namespace: str, name: str | None
    ) -> None:
        with self._lock:
            denied = (verb, resource, namespace) in self._denied or (verb, resource, "*") in self._denied
        if not denied:
            return
        plural = resource.split("/")[0]
        qualified = f"{plural}.{group}" if group else plural
        subject = f'{qualified} "{name}"' if name else qualified
        raise ApiError(
            403,
            f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" in the namespace "{namespace}"',
            {"name": name or "", "group": group, "kind": plural},
        )

    def _fault_error(self, fault: Fault, method: str, path: str, user: str | None) -> ApiError:
        code = fault.status or 500
        match = _SCALE_PATH.match(path)
        details: JsonDict | None = None
        subject = "the requested resource"
        if match:
            group, plural, name = match["group"], match["plural"], match["name"]
            details = {"name": name, "group": group, "kind": plural}
            subject = f'{plural}.{group} "{name}"'
        message = fault.message
        if message is None:
            if code == 401:
                message = "Unauthorized"
            elif code == 403:
                verb = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create"}.get(method, "get")
                resource, group, namespace = "the requested resource", "", ""
                if match:
                    resource, group, namespace = f"{match['plural']}/scale", match["group"], match["ns"]
                message = (
                    f'{subject} is forbidden: User "{user or "system:anonymous"}" cannot {verb} resource '
                    f'"{resource}" in API group "{group}" in the namespace "{namespace}"'
                )
            elif code == 404:
                message = (
                    f"{subject} not found" if match else "the server could not find the requested resource"
                )
            elif code == 409:
                message = (
                    f"Operation cannot be fulfilled on {subject}: the object has been modified; "
                    "please apply your changes to the latest version and try again"
                )
            elif code == 429:
                message = "Too many requests, please try again later."
            elif code == 503:
                message = "the server is currently unable to handle the request"
            elif code == 504:
                message = (
                    "the server was unable to return a response in the time allotted, "
                    "but may still be processing the request"
                )
            else:
                message = "Internal error occurred: injected fault"
        return ApiError(code, message, details if code in (403, 404, 409) else None)

    def _handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        content_type: str | None,
        body: Any,
        user: str,
    ) -> tuple[int, JsonDict]:
        scale = _SCALE_PATH.match(path)
        if scale:
            return self._handle_scale(method, scale.groupdict(), content_type, body, user)
        pods = _PODS_PATH.match(path)
        if pods:
            if method != "GET":
                raise ApiError(
                    405, f"the server does not allow this method on the requested resource ({method})"
                )
            return 200, self._list_pods(pods["ns"], query, user)
        events = _CORE_EVENTS_PATH.match(path) or _EVENTS_V1_PATH.match(path)
        if events:
            group = "events.k8s.io" if path.startswith("/apis/") else ""
            if method == "POST":
                return 201, self._create_event(events["ns"], group, body, user)
            if method == "GET":
                self._check_rbac(user, "list", group, "events", events["ns"], None)
                items = self.events(events["ns"])
                kind = "EventList"
                return 200, {
                    "kind": kind,
                    "apiVersion": "events.k8s.io/v1" if group else "v1",
                    "metadata": {},
                    "items": items,
                }
            raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
        if path == "/version":
            return 200, {
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-kube-sim",
                "platform": "linux/amd64",
            }
        raise ApiError(404, "the server could not find the requested resource")

    def _handle_scale(
        self, method: str, route: Mapping[str, str], content_type: str | None, body: Any, user: str
    ) -> tuple[int, JsonDict]:
        group, version, ns, plural, name = (route[k] for k in ("group", "version", "ns", "plural", "name"))
        with self._lock:
            known = (group == "apps" and version == "v1" and plural in _APPS_KINDS) or (
                (group, version, plural) in self._custom_resources
            )
        if not known:
            raise ApiError(404, "the server could not find the requested resource")
        resource = f"{plural}/scale"
        if method == "GET":
            self._check_rbac(user, "get", group, resource, ns, name)
            with self._lock:
                return 200, self._scale_object(self._get_workload(group, plural, ns, name))
        if method not in ("PATCH", "PUT"):
            raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
        self._check_rbac(user, "patch" if method == "PATCH" else "update", group, resource, ns, name)
        media = (content_type or "").split(";")[0].strip().lower()
        with self._lock:
            workload = self._get_workload(group, plural, ns, name)
            current = self._scale_object(workload)
            if method == "PUT":
                if media != "application/json" or not isinstance(body, dict):
                    raise ApiError(
                        415,
                        _UNKNOWN_FORMAT + "application/json, application/yaml",
                    )
                updated = body
                precondition = (body.get("metadata") or {}).get("resourceVersion") or None
            else:
                custom = group not in ("apps", "")
                if media == "application/merge-patch+json" or (
                    media == "application/strategic-merge-patch+json" and not custom
                ):
                    updated = _merge_patch(current, body)
                elif media == "application/json-patch+json":
                    updated = _json_patch(current, body)
                else:
                    accepted = _PATCH_TYPES
                    if not custom:
                        accepted += ", application/strategic-merge-patch+json"
                    raise ApiError(
                        415,
                        _UNKNOWN_FORMAT + accepted,
                    )
                precondition = (updated.get("metadata") or {}).get("resourceVersion")
            # resourceVersion in the submitted object is an optimistic-concurrency precondition.
            if precondition is not None and str(precondition) != workload.resource_version:
                raise ApiError(
                    409,
                    f'Operation cannot be fulfilled on {workload.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": group, "kind": plural},
                )
            replicas = (updated.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(
                    422,
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                    f"{json.dumps(replicas)}: {_MUST_BE_NON_NEGATIVE}",
                    {
                        "name": name,
                        "group": "autoscaling",
                        "kind": "Scale",
                        "causes": [
                            {
                                "reason": "FieldValueInvalid",
                                "message": _MUST_BE_NON_NEGATIVE,
                                "field": "spec.replicas",
                            }
                        ],
                    },
                )
            if replicas != workload.replicas:
                workload.replicas = replicas
                workload.resource_version = self._next_rv()
                self._reconcile_pods(workload)
            return 200, self._scale_object(workload)

    def _list_pods(self, namespace: str, query: Mapping[str, list[str]], user: str) -> JsonDict:
        self._check_rbac(user, "list", "", "pods", namespace, None)
        selector = (query.get("labelSelector") or [""])[0]
        try:
            requirements = parse_selector(selector)
        except SelectorError as exc:
            raise ApiError(400, str(exc)) from exc
        limit = int((query.get("limit") or ["0"])[0] or 0)
        offset = 0
        token = (query.get("continue") or [""])[0]
        if token:
            try:
                offset = int(json.loads(base64.b64decode(token))["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, f"continue key is not valid: {exc}") from exc
        with self._lock:
            self._expire_pods()
            matching = [
                self._pod_object(p)
                for p in sorted(self._pods.values(), key=lambda p: p.name)
                if p.namespace == namespace and selector_matches(requirements, p.labels)
            ]
            list_rv = str(next(self._rv))
        items = matching[offset : offset + limit] if limit > 0 else matching[offset:]
        metadata: JsonDict = {"resourceVersion": list_rv}
        end = offset + len(items)
        if limit > 0 and end < len(matching):
            metadata["continue"] = base64.b64encode(json.dumps({"start": end}).encode()).decode()
            metadata["remainingItemCount"] = len(matching) - end
        return {"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items}

    def _create_event(self, namespace: str, group: str, body: Any, user: str) -> JsonDict:
        self._check_rbac(user, "create", group, "events", namespace, None)
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was in an unknown format")
        event = copy.deepcopy(body)
        metadata = event.setdefault("metadata", {})
        metadata.setdefault("namespace", namespace)
        regarding_key = "regarding" if group else "involvedObject"
        regarding = event.get(regarding_key) or {}
        errors = []
        if metadata.get("namespace") != namespace:
            errors.append("metadata.namespace: Invalid value: does not match the namespace of the request")
        if not metadata.get("name") and not metadata.get("generateName"):
            errors.append("metadata.name: Required value: name or generateName is required")
        if not group and regarding.get("namespace", namespace) != namespace:
            errors.append(
                f'involvedObject.namespace: Invalid value: "{regarding.get("namespace")}": '
                "does not match event.namespace"
            )
        if not event.get("reason") and not group:
            errors.append("reason: Required value")
        if event.get("type") not in (None, "Normal", "Warning"):
            errors.append(
                f'type: Unsupported value: "{event.get("type")}": supported values: "Normal", "Warning"'
            )
        if errors:
            name = metadata.get("name", "")
            raise ApiError(
                422,
                f'Event "{name}" is invalid: ' + ", ".join(errors),
                {"name": name, "kind": "Event", "group": group},
            )
        with self._lock:
            if not metadata.get("name"):
                metadata["name"] = metadata["generateName"] + secrets.token_hex(3)[:5]
            metadata["uid"] = str(uuid.uuid4())
            metadata["resourceVersion"] = self._next_rv()
            metadata["creationTimestamp"] = _rfc3339(time.time())
            event.setdefault("kind", "Event")
            event.setdefault("apiVersion", "events.k8s.io/v1" if group else "v1")
            self._events.append(event)
        return copy.deepcopy(event)

    def _record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(entry)


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        super().__init__(address, handler)
        self.ssl_context = context

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        # Headers and body leave in separate writes; without TCP_NODELAY every response would
        # wait out the client's delayed ACK (~40 ms), which would swamp the latency benchmarks.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake runs lazily in the handler thread, so one slow or failing client
        # (e.g. the wrong-CA test) never blocks the accept loop.
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that reject our certificate or hang up mid-request are expected; stay quiet.
        pass


def _make_handler(sim: KubeApiSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kube-sim"
        # Idle keep-alive connections are dropped after this long.
        timeout = 30

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _send_faulty(self, code: int, payload: JsonDict, fault: Fault) -> None:
            data = json.dumps(payload).encode()
            head, tail = data[:-1], data[-1:]
            try:
                if fault.drip_seconds:
                    reason = _STATUS_REASONS.get(code, "OK")
                    length = f"Content-Length: {len(data)}" if fault.declare_length else "Connection: close"
                    raw = (
                        f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
                    ).encode() + data
                    self.close_connection = True
                    for start in range(0, len(raw), fault.drip_bytes):
                        self.wfile.write(raw[start : start + fault.drip_bytes])
                        time.sleep(fault.drip_seconds)
                    return
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data) + fault.pad_bytes))
                self.end_headers()
                # Spaces before the closing brace: the answer stays valid JSON, just huge.
                self.wfile.write(head)
                chunk = b" " * 65536
                left = fault.pad_bytes
                while left > 0:
                    self.wfile.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
                self.wfile.write(tail)
            except OSError:
                # The client stopped reading (its byte cap or deadline), as intended.
                self.close_connection = True

        def _send(self, code: int, payload: JsonDict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Audit-Id", str(uuid.uuid4()))
            if code == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            query = parse_qs(parts.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type")
            body: Any = None
            user: str | None = None
            token_sha: str | None = None
            auth_error: str | None = None
            faulted = False
            fault: Fault | None = None
            try:
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        raise ApiError(400, f"the body of the request could not be decoded: {exc}") from exc
                fault = sim._take_fault(method, path)
                if fault is not None and fault.latency_seconds > 0:
                    time.sleep(fault.latency_seconds)
                header = self.headers.get("Authorization") or ""
                token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
                if token:
                    token_sha = hashlib.sha256(token.encode()).hexdigest()
                if fault is not None and fault.status is not None:
                    faulted = True
                    raise sim._fault_error(fault, method, path, None)
                if not token:
                    auth_error = "no bearer token"
                    raise ApiError(401, "Unauthorized")
                try:
                    user = sim.authenticator(token)
                except TokenRejected as exc:
                    auth_error = str(exc)
                    raise ApiError(401, "Unauthorized") from exc
                code, payload = sim._handle(method, path, query, content_type, body, user)
            except ApiError as exc:
                code, payload = exc.code, status_body(exc.code, exc.message, exc.details)
            sim._record(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=query,
                    content_type=content_type,
                    body=body,
                    status=code,
                    user=user,
                    token_sha256=token_sha,
                    auth_error=auth_error,
                    fault=faulted,
                    at=time.time(),
                )
            )
            if fault is not None and (fault.pad_bytes or fault.drip_seconds):
                self._send_faulty(code, payload, fault)
                return
            self._send(code, payload)

    return Handler


def main() -> None:
    """Run a simulator with one Deployment until Ctrl-C (for poking at it with curl or kubectl)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--deployment", default="web")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--ready-delay-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with KubeApiSimulator(default_ready_delay_seconds=args.ready_delay_seconds) as sim:
        sim.add_deployment(args.namespace, args.deployment, args.replicas)
        print(f"kube-sim serving {sim.url} (CA: {sim.ca_path}); any well-formed EKS token is accepted")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()


__all__ = [
    "EKS_TOKEN_PREFIX",
    "ApiError",
    "Authenticator",
    "EksTokenValidator",
    "Fault",
    "KubeApiSimulator",
    "RecordedRequest",
    "Requirement",
    "SelectorError",
    "SimPod",
    "StaticTokenValidator",
    "TokenRejected",
    "format_label_selector",
    "parse_selector",
    "selector_matches",
    "status_body",
]
