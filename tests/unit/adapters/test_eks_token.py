"""EksTokenProvider and EksClusterResolver: token format, signature, caching and refresh, DescribeCluster."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.stub import Stubber

from ampscaler.adapters.eks_token import (
    DEFAULT_REFRESH_AFTER_SECONDS,
    TOKEN_PREFIX,
    TOKEN_VALIDITY_SECONDS,
    EksClusterInfo,
    EksClusterResolver,
    EksTokenProvider,
)
from ampscaler.errors import ScaleTargetError
from devstack.kube_sim import EksTokenValidator, TokenRejected

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient

CREDS = Credentials("AKIAEXAMPLEKEY000001", "example-secret", "example-session-token")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def decode(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token[len(TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def query(token: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(decode(token)).query).items()}


def test_token_is_prefixed_unpadded_base64url_of_a_presigned_sts_url() -> None:
    token = EksTokenProvider("eu-west-1", credentials=CREDS).token("prod")

    body = token[len(TOKEN_PREFIX) :]
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in body and "+" not in body and "/" not in body
    url = urlsplit(decode(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")


def test_token_presigns_get_caller_identity_with_the_cluster_header_signed() -> None:
    params = query(EksTokenProvider("eu-west-1", credentials=CREDS).token("prod"))

    assert params["Action"] == "GetCallerIdentity"
    assert params["Version"] == "2011-06-15"
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert params["X-Amz-Credential"].startswith("AKIAEXAMPLEKEY000001/")
    assert params["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")
    assert params["X-Amz-Security-Token"] == "example-session-token"
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - signed_at).total_seconds()) < 60


def test_token_signature_verifies_independently_for_its_cluster_only() -> None:
    token = EksTokenProvider("eu-west-1", credentials=CREDS).token("prod")
    secrets = {"AKIAEXAMPLEKEY000001": "example-secret"}

    user = EksTokenValidator("prod", secret_keys=secrets)(token)

    assert user.endswith("/AKIAEXAMPLEKEY000001")
    with pytest.raises(TokenRejected, match="signature mismatch"):
        EksTokenValidator("staging", secret_keys=secrets)(token)
    with pytest.raises(TokenRejected, match="signature mismatch"):
        EksTokenValidator("prod", secret_keys={"AKIAEXAMPLEKEY000001": "other-secret"})(token)


def test_token_older_than_fifteen_minutes_is_rejected_by_the_validator() -> None:
    token = EksTokenProvider("eu-west-1", credentials=CREDS).token("prod")
    later = dt.datetime.now(dt.UTC).timestamp() + TOKEN_VALIDITY_SECONDS + 5

    with pytest.raises(TokenRejected, match="expired"):
        EksTokenValidator("prod", clock=lambda: later)(token)


def test_token_is_cached_until_the_refresh_age() -> None:
    clock = FakeClock()
    provider = EksTokenProvider("eu-west-1", credentials=CREDS, clock=clock)

    first = provider.token("prod")
    clock.now += DEFAULT_REFRESH_AFTER_SECONDS - 1
    assert provider.token("prod") == first
    assert provider.generated == {"prod": 1}

    clock.now += 1
    provider.token("prod")
    assert provider.generated == {"prod": 2}


def test_refresh_age_is_under_ten_minutes_and_leaves_margin_in_the_validity() -> None:
    assert DEFAULT_REFRESH_AFTER_SECONDS < 10 * 60
    assert TOKEN_VALIDITY_SECONDS - DEFAULT_REFRESH_AFTER_SECONDS >= 5 * 60


def test_invalidate_forces_a_new_token_for_that_cluster_only() -> None:
    provider = EksTokenProvider("eu-west-1", credentials=CREDS, clock=FakeClock())
    provider.token("prod")
    provider.token("staging")

    provider.invalidate("prod")
    provider.token("prod")
    provider.token("staging")

    assert provider.generated == {"prod": 2, "staging": 1}


def test_tokens_are_per_cluster() -> None:
    provider = EksTokenProvider("eu-west-1", credentials=CREDS)

    assert provider.token("prod") != provider.token("staging")


@pytest.mark.parametrize("seconds", [0, TOKEN_VALIDITY_SECONDS, 20 * 60])
def test_refresh_age_outside_the_validity_is_rejected(seconds: float) -> None:
    with pytest.raises(ValueError, match="refresh_after_seconds"):
        EksTokenProvider("eu-west-1", credentials=CREDS, refresh_after_seconds=seconds)


def test_missing_credentials_raise_an_actionable_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ScaleTargetError, match="no AWS credentials"):
        EksTokenProvider("eu-west-1").token("prod")


def test_token_never_appears_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # Named too: a Powertools Logger for service "ampscaler" (any loaded handler) sets INFO on the
    # package's parent logger, which would hide the debug line whatever the root level.
    caplog.set_level(logging.DEBUG, logger="ampscaler.adapters.eks_token")
    provider = EksTokenProvider("eu-west-1", credentials=CREDS)

    token = provider.token("prod")

    assert "prod" in caplog.text
    assert token not in caplog.text
    assert token[len(TOKEN_PREFIX) :][:40] not in caplog.text


# -- cluster info ------------------------------------------------------------------------------

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def describe_response(name: str) -> dict[str, object]:
    return {
        "cluster": {
            "name": name,
            "arn": f"arn:aws:eks:eu-west-1:111122223333:cluster/{name}",
            "endpoint": "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
            "certificateAuthority": {"data": base64.b64encode(CA_PEM).decode()},
            "status": "ACTIVE",
        }
    }


def eks_client() -> EKSClient:
    return boto3.client("eks", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")


def test_describe_cluster_is_cached_per_cluster_name() -> None:
    client = eks_client()
    with Stubber(client) as stub:
        stub.add_response("describe_cluster", describe_response("prod"), {"name": "prod"})
        resolver = EksClusterResolver(client)

        first = resolver.describe_cluster("prod")
        second = resolver.describe_cluster("prod")

        stub.assert_no_pending_responses()
    assert first is second
    assert first.endpoint == "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
    assert first.ca_pem == CA_PEM


def test_describe_cluster_not_found_names_the_cluster_and_region() -> None:
    client = eks_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_cluster", "ResourceNotFoundException", "No cluster found")
        with pytest.raises(ScaleTargetError, match="EKS cluster ghost not found in region eu-west-1"):
            EksClusterResolver(client).describe_cluster("ghost")


def test_describe_cluster_access_denied_names_the_iam_action() -> None:
    client = eks_client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_cluster", "AccessDeniedException", "not authorized")
        with pytest.raises(ScaleTargetError, match="eks:DescribeCluster"):
            EksClusterResolver(client).describe_cluster("prod")


def test_ca_file_holds_the_decoded_bundle_and_is_reused() -> None:
    info = EksClusterInfo("prod", "https://example", base64.b64encode(CA_PEM).decode())

    path = info.ca_file()

    assert Path(path).read_bytes() == CA_PEM
    assert info.ca_file() == path
