"""EKS authentication: IAM bearer tokens (the ``aws eks get-token`` recipe) and cached cluster info.

Upstream: aws-cli ``customizations/eks/get_token.py`` (``TokenGenerator``) and aws-iam-authenticator
``pkg/token/token.go`` (``GetWithSTS`` on the client side, ``Verify`` on the server side).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceId
from botocore.signers import RequestSigner

from ampscaler.errors import ScaleTargetError

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
STS_API_VERSION = "2011-06-15"
# X-Amz-Expires as aws-cli and aws-iam-authenticator send it. STS ignores it for this use: the
# authenticator accepts the token until 15 minutes after X-Amz-Date whatever the value.
PRESIGN_EXPIRES_SECONDS = 60
# How long the EKS authenticator accepts a token after its X-Amz-Date.
TOKEN_VALIDITY_SECONDS = 15 * 60
# Regenerate at 9 minutes: under the 10-minute age the issue allows, and it leaves 6 minutes of
# the 15-minute validity for clock skew between Lambda and the control plane plus any request
# still in flight (each is bounded by a few seconds of timeout). aws-cli and client-go refresh at
# 14 minutes; a token is cheap (a local HMAC, no network call), so refreshing earlier costs nothing.
DEFAULT_REFRESH_AFTER_SECONDS = 9 * 60


class EksTokenProvider:
    """Bearer tokens for EKS clusters, one cached per cluster name, made from the function's IAM role.

    The token is ``k8s-aws-v1.`` + unpadded base64url of a presigned STS ``GetCallerIdentity`` URL
    on the regional STS host that also signs the ``x-k8s-aws-id: <cluster>`` header, exactly as
    ``aws eks get-token`` builds it. Tokens are never logged.

    Parameters
    ----------
    region:
        Region of the clusters (the STS host is ``sts.<region>.amazonaws.com``).
    credentials:
        Credentials to sign with; default: the boto3 default session's (refreshable) credentials,
        resolved lazily on first use.
    clock:
        Monotonic seconds, injectable for tests.
    refresh_after_seconds:
        Age at which a cached token is regenerated (default 540 s, see DEFAULT_REFRESH_AFTER_SECONDS).
    """

    def __init__(
        self,
        region: str,
        *,
        credentials: Credentials | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_after_seconds: float = DEFAULT_REFRESH_AFTER_SECONDS,
    ) -> None:
        if not 0 < refresh_after_seconds < TOKEN_VALIDITY_SECONDS:
            raise ValueError(f"refresh_after_seconds must be in (0, {TOKEN_VALIDITY_SECONDS})")
        self.region = region
        self._credentials = credentials
        self._clock = clock
        self._refresh_after = refresh_after_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}
        # RequestSigner keeps only a weak reference to its emitter, so the provider owns it.
        self._events = HierarchicalEmitter()
        # How many tokens were generated, per cluster; lets tests and metrics see refreshes
        # without ever exposing a token.
        self.generated: dict[str, int] = {}

    def token(self, cluster: str) -> str:
        """The cached token for ``cluster``, regenerated once it is ``refresh_after_seconds`` old.

        Raises
        ------
        ScaleTargetError
            When no AWS credentials are available to sign with.
        """
        now = self._clock()
        with self._lock:
            cached = self._cache.get(cluster)
            if cached is not None and now - cached[1] < self._refresh_after:
                return cached[0]
            token = self._generate(cluster)
            self._cache[cluster] = (token, now)
            self.generated[cluster] = self.generated.get(cluster, 0) + 1
            return token

    def invalidate(self, cluster: str) -> None:
        """Forget the cached token of ``cluster`` (after a 401), so the next call signs a new one."""
        with self._lock:
            self._cache.pop(cluster, None)

    def _resolve_credentials(self) -> Credentials:
        if self._credentials is None:
            import boto3  # lazy: only the production path needs the default session

            found = boto3.Session().get_credentials()
            if found is None:
                raise ScaleTargetError(
                    "no AWS credentials to sign the EKS token with; the function's execution role "
                    "should provide them"
                )
            self._credentials = found
        return self._credentials

    def _generate(self, cluster: str) -> str:
        credentials = self._resolve_credentials()
        # A fresh signer per token: RequestSigner reads the credentials at sign time, and refreshable
        # credentials refresh themselves before they expire.
        signer = RequestSigner(ServiceId("sts"), self.region, "sts", "v4", credentials, self._events)
        request: dict[str, Any] = {
            "method": "GET",
            "url": f"https://sts.{self.region}.amazonaws.com/?Action=GetCallerIdentity&Version={STS_API_VERSION}",
            "body": {},
            "headers": {CLUSTER_ID_HEADER: cluster},
            "context": {},
        }
        try:
            url = signer.generate_presigned_url(
                request,
                operation_name="GetCallerIdentity",
                expires_in=PRESIGN_EXPIRES_SECONDS,
                region_name=self.region,
            )
        except BotoCoreError as exc:
            raise ScaleTargetError(f"cannot sign the EKS token for cluster {cluster}: {exc}") from exc
        encoded = base64.urlsafe_b64encode(str(url).encode("utf-8")).decode("ascii").rstrip("=")
        logger.debug("generated a new EKS token for cluster %s", cluster)
        return TOKEN_PREFIX + encoded


@dataclass(frozen=True)
class EksClusterInfo:
    """What the Kubernetes client needs to reach one cluster: its endpoint and CA bundle."""

    name: str
    endpoint: str
    # certificateAuthority.data from DescribeCluster: base64 of the PEM bundle.
    ca_data: str

    @property
    def ca_pem(self) -> bytes:
        """The cluster CA bundle as PEM bytes."""
        return base64.b64decode(self.ca_data)

    def ca_file(self) -> str:
        """Path of a file holding the CA bundle (the kubernetes client wants a path).

        The name is derived from the content, so warm Lambda invocations reuse the same file and
        a rotated CA gets a new one.
        """
        pem = self.ca_pem
        digest = hashlib.sha256(pem).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"ampscaler-eks-ca-{digest}.crt")
        if not os.path.exists(path):
            # Write then rename, so a concurrent reader never sees a half-written bundle.
            fd, tmp = tempfile.mkstemp(prefix="ampscaler-eks-ca-", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            os.replace(tmp, path)
        return path


class EksClusterResolver:
    """``eks:DescribeCluster`` with a per-cluster cache: endpoint and CA rarely change.

    Parameters
    ----------
    eks_client:
        A boto3 EKS client; default: created lazily from the default session.
    """

    def __init__(self, eks_client: EKSClient | None = None) -> None:
        self._client = eks_client
        self._lock = threading.Lock()
        self._cache: dict[str, EksClusterInfo] = {}

    @property
    def client(self) -> EKSClient:
        """The EKS client, created on first use."""
        if self._client is None:
            import boto3

            self._client = boto3.client("eks")
        return self._client

    def describe_cluster(self, name: str) -> EksClusterInfo:
        """Endpoint and CA of cluster ``name``, from the cache or ``eks:DescribeCluster``.

        Raises
        ------
        ScaleTargetError
            When the cluster does not exist, access is denied, or it has no endpoint yet.
        """
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        try:
            cluster = self.client.describe_cluster(name=name)["cluster"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise ScaleTargetError(
                    f"EKS cluster {name} not found in region {self.client.meta.region_name}"
                ) from exc
            if code in {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}:
                raise ScaleTargetError(
                    f"access denied to eks:DescribeCluster on cluster {name}; allow that action on the "
                    f"cluster ARN in the scaler function's role"
                ) from exc
            raise ScaleTargetError(f"eks:DescribeCluster {name} failed: {code}: {exc}") from exc
        except BotoCoreError as exc:
            raise ScaleTargetError(f"eks:DescribeCluster {name} failed: {exc}") from exc
        endpoint = cluster.get("endpoint")
        ca_data = cluster.get("certificateAuthority", {}).get("data")
        if not endpoint or not ca_data:
            raise ScaleTargetError(
                f"EKS cluster {name} has no endpoint or CA yet (status {cluster.get('status', 'unknown')})"
            )
        info = EksClusterInfo(name=name, endpoint=endpoint, ca_data=ca_data)
        with self._lock:
            self._cache[name] = info
        return info

    def invalidate(self, name: str) -> None:
        """Forget the cached info of ``name`` (e.g. after a TLS failure following a CA rotation)."""
        with self._lock:
            self._cache.pop(name, None)
