"""boto3 clients whose every call, retries included, ends by the caller's deadline.

botocore's timeouts are per socket operation and fixed when a client is created, and its
retries sleep without looking at the clock, so a DynamoDB or SSM call can outlive the slot it was
made for. A client built here sends each HTTP attempt itself, from the ``before-send`` event
(the hook moto's in-process mock uses), with connect and read timeouts clamped to the time left
before the deadline of the calling thread (``deadline_scope``), and refuses to start an attempt
once that deadline has passed. Outside a deadline scope the client behaves as any boto3 client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import get_cert_path

from ampscaler.errors import DeadlineExceededError

_local = threading.local()

# Per attempt, before clamping to the deadline. DynamoDB and SSM answer in milliseconds; a call
# that takes longer is better retried (standard mode, 3 attempts) while the deadline allows.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 1.0
DEFAULT_READ_TIMEOUT_SECONDS = 3.0


@contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Bound every call of a bounded client made by this thread inside the block by ``deadline``."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def current_deadline() -> float | None:
    """The deadline of the calling thread's innermost ``deadline_scope`` (None outside one)."""
    value = getattr(_local, "deadline", None)
    return value if isinstance(value, float | int) else None


class DeadlineSender:
    """``before-send`` handler: sends the attempt with timeouts clamped to the thread's deadline.

    Parameters
    ----------
    connect_timeout_seconds, read_timeout_seconds:
        Upper bounds per attempt; the time left before the deadline lowers them.
    max_pool_connections:
        Connections kept per host (the tick evaluates rules on a thread pool).
    clock:
        Unix time; injectable for tests.
    """

    def __init__(
        self,
        connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
        max_pool_connections: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connect_timeout_seconds = connect_timeout_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self._clock = clock
        # The same CA bundle botocore verifies with; TLS verification is never turned off.
        self._pool = urllib3.PoolManager(
            maxsize=max_pool_connections, cert_reqs="CERT_REQUIRED", ca_certs=get_cert_path(True)
        )

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        deadline = current_deadline()
        if deadline is None:
            return None  # botocore sends it the usual way
        left = deadline - self._clock()
        if left <= 0:
            raise DeadlineExceededError(f"deadline passed before calling {_host(request.url)}")
        timeout = urllib3.Timeout(
            connect=min(self.connect_timeout_seconds, left), read=min(self.read_timeout_seconds, left)
        )
        try:
            response = self._pool.urlopen(
                method=request.method,
                url=request.url,
                body=request.body,
                headers=dict(request.headers.items()),
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                timeout=timeout,
            )
        # botocore's HTTPClientError subclasses: the SDK's retry handler treats them as it treats
        # its own sender's, so transient failures are retried while the deadline allows.
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=request.url, error=exc) from None
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from None
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError) as exc:
            raise EndpointConnectionError(endpoint_url=request.url, error=exc) from None
        # As botocore's own sender builds it: urllib3's headers and the unread response as ``raw``.
        return AWSResponse(request.url, response.status, response.headers, response)  # type: ignore[arg-type]


def bounded_client(
    service: str,
    *,
    session: boto3.Session | None = None,
    sender: DeadlineSender | None = None,
    max_attempts: int = 3,
    region: str | None = None,
) -> Any:
    """A boto3 client for ``service`` whose calls obey ``deadline_scope``.

    Parameters
    ----------
    service:
        boto3 service name (``dynamodb``, ``ssm``, ``sqs``).
    session:
        Session to create it from (default: a new one, so it honours ``AWS_ENDPOINT_URL`` and the
        environment at this moment; boto3's default session is not thread-safe).
    sender:
        The attempt sender (default: a new ``DeadlineSender``).
    max_attempts:
        Attempts per call in botocore's standard retry mode; the deadline usually stops them first.
    region:
        The client's region (default: the session's, from ``AWS_DEFAULT_REGION`` or the config).
    """
    sender = sender or DeadlineSender()
    config = Config(
        connect_timeout=sender.connect_timeout_seconds,
        read_timeout=sender.read_timeout_seconds,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=64,
    )
    client = (session or boto3.session.Session()).client(  # type: ignore[call-overload]
        service, config=config, region_name=region
    )
    client.meta.events.register("before-send", sender)
    return client


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or url
