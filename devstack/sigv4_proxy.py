"""An AMP look-alike in front of a local Prometheus: verifies SigV4 independently, then forwards.

The proxy listens on plain HTTP on a free loopback port (the adapter's endpoint is configurable, so
TLS adds nothing to what is tested here). For every request it

1. parses the ``Authorization`` header, looks up the access key among the known test credentials,
   checks the credential scope (region, service ``aps``) and the ``X-Amz-Date`` clock skew;
2. checks that ``X-Amz-Content-SHA256``, when sent, is the SHA-256 of the body actually received;
3. recomputes the signature with botocore's ``SigV4Auth`` over the method, path, query, the headers
   named in ``SignedHeaders`` and the body, and compares it with the one sent;
4. answers 403 with an AMP-like JSON body on any mismatch, else forwards
   ``/workspaces/<id>/api/v1/<endpoint>`` to Prometheus's ``/api/v1/<endpoint>``.

The canonical query string is rebuilt the way a server does (decode, ``+`` is a space, re-encode
RFC 3986) instead of taken verbatim as botocore's client-side code does. Clients and servers can
disagree on exactly this step, which is why the adapter never puts PromQL in the query string.

Faults for tests: ``inject(Fault(...), times=N)`` answers the next N authenticated requests with a
given status/body, delays them, drops the connection, answers with a generated body of any size
(sent in chunks, never held whole), or drips the answer a few bytes at a time;
``latency_seconds`` slows every request.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "aps"
MAX_CLOCK_SKEW_SECONDS = 300
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)\s*$"
)
_PATH_RE = re.compile(r"^/workspaces/(?P<workspace>[^/]+)/api/v1/(?P<endpoint>[A-Za-z0-9_/.-]+)$")


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) forwarding one request.

    ``status`` set: answer with it and ``body`` without forwarding. ``close``: drop the connection
    without answering. ``delay_seconds``: wait first (then answer or forward).
    ``pad_bytes``: append that many spaces to ``body`` (valid JSON stays valid), streamed in chunks
    so a 150 MB answer costs the proxy no memory; ``declare_length`` False sends it chunked (no
    Content-Length), or for a drip, delimited by the connection's close. ``drip_seconds``: send the whole answer (status line, headers, body)
    ``drip_bytes`` at a time with that pause between writes, like a server that keeps every read
    just inside the client's read timeout.
    """

    status: int | None = None
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    close: bool = False
    pad_bytes: int = 0
    declare_length: bool = True
    drip_seconds: float = 0.0
    drip_bytes: int = 1


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the proxy saw it, for assertions."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    # "forwarded", "fault", or the 403/404 message that rejected it.
    outcome: str


class _Verifier(SigV4Auth):
    """botocore's SigV4 computation with a server-side canonical query string."""

    def canonical_query_string(self, request: AWSRequest) -> str:
        query = urllib.parse.urlsplit(str(request.url)).query
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        encoded = sorted(
            (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs
        )
        return "&".join(f"{k}={v}" for k, v in encoded)


class SigV4Proxy:
    """A SigV4-verifying reverse proxy emulating AMP's query endpoints.

    Parameters
    ----------
    upstream
        Prometheus base URL, e.g. ``PrometheusServer.url``.
    region
        The region requests must be scoped to.
    credentials
        Known access key id -> secret access key.
    workspace_ids
        Accepted workspace ids; None accepts any.
    """

    def __init__(
        self,
        upstream: str,
        *,
        region: str,
        credentials: Mapping[str, str],
        workspace_ids: tuple[str, ...] | None = None,
    ) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.region = region
        self.credentials = dict(credentials)
        self.workspace_ids = workspace_ids
        self.latency_seconds = 0.0
        self.requests: list[ReceivedRequest] = []
        self._faults: deque[tuple[Fault, int | None]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41235`` (what AMP_ENDPOINT_URL points at)."""
        if self._server is None:
            raise RuntimeError("proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def workspace_url(self, workspace_id: str) -> str:
        """The workspace base URL, like ``https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>``."""
        return f"{self.url}/workspaces/{workspace_id}"

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Apply ``fault`` to the next ``times`` authenticated requests (None: until ``clear``)."""
        with self._lock:
            self._faults.append((fault, times))

    def clear(self) -> None:
        """Drop pending faults, the latency and the request log."""
        with self._lock:
            self._faults.clear()
            self.latency_seconds = 0.0
            self.requests.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault, times = self._faults[0]
            if times is not None:
                if times <= 1:
                    self._faults.popleft()
                else:
                    self._faults[0] = (fault, times - 1)
            return fault

    def _record(self, entry: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    # -- verification ----------------------------------------------------------------------------

    def verify(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> str | None:
        """Return None when the request is correctly signed, else the 403 message AMP would give.

        ``headers`` must be keyed case-insensitively (lower-case names).
        """
        authorization = headers.get("authorization")
        if not authorization:
            return "Missing Authentication Token"
        match = _AUTH_RE.match(authorization)
        if not match:
            return "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters."
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            return f"Credential should be scoped to a valid region, not '{match['credential']}'."
        access_key, scope_date, region, service, _ = parts
        secret = self.credentials.get(access_key)
        if secret is None:
            return "The security token included in the request is invalid."
        if region != self.region:
            return f"Credential should be scoped to a valid region, not '{region}'."
        if service != SERVICE:
            return f"Credential should be scoped to correct service: '{SERVICE}'."
        amz_date = headers.get("x-amz-date", "")
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        skew = abs(time.time() - signed_at.timestamp())
        if skew > MAX_CLOCK_SKEW_SECONDS or amz_date[:8] != scope_date:
            return f"Signature expired: {amz_date} is now earlier or later than allowed ({skew:.0f} s skew)."
        declared_hash = headers.get("x-amz-content-sha256")
        if declared_hash is not None and declared_hash != hashlib.sha256(body).hexdigest():
            return "The provided 'x-amz-content-sha256' header does not match what was computed."
        signed_names = match["signed"].split(";")
        if "host" not in signed_names:
            return "'Host' must be a signed header."
        missing = [name for name in signed_names if name not in headers]
        if missing:
            return f"Signed header(s) {', '.join(missing)} not present in the request."
        request = AWSRequest(
            method=method,
            url=f"http://{headers['host']}{raw_path}",
            headers={name: headers[name] for name in signed_names},
            data=body,
        )
        request.context["timestamp"] = amz_date
        verifier = _Verifier(Credentials(access_key, secret), SERVICE, self.region)
        canonical = verifier.canonical_request(request)
        expected = verifier.signature(verifier.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, match["signature"]):
            return SIGNATURE_MISMATCH
        return None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free loopback port in a background thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _ProxyHandler)
        server.proxy = self
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="sigv4-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; in-flight handler threads are daemons and end with their request."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    proxy: SigV4Proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        # Quiet: the request log on the proxy is what tests inspect.
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        path, _, query = self.path.partition("?")
        raw_path = self.path

        def record(outcome: str) -> None:
            proxy._record(ReceivedRequest(self.command, path, query, headers, body, outcome))

        rejection = proxy.verify(self.command, raw_path, headers, body)
        route = _PATH_RE.match(path)
        known = proxy.workspace_ids
        unrouted = route is None or (known is not None and route["workspace"] not in known)
        # The fault is taken on arrival, before any latency: a request its client has given up
        # on must not sleep through the test and then take a fault injected for the next one.
        fault = proxy._next_fault() if rejection is None and not unrouted else None
        if proxy.latency_seconds:
            time.sleep(proxy.latency_seconds)
        if rejection is not None:
            record(rejection)
            self._send(403, json.dumps({"message": rejection}).encode(), "application/json")
            return
        if route is None or unrouted:
            message = f"Workspace not found or unsupported path: {path}"
            record(message)
            self._send(404, json.dumps({"message": message}).encode(), "application/json")
            return
        if fault is not None:
            record("fault")
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.close:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            if fault.status is not None:
                payload = fault.body.encode() if isinstance(fault.body, str) else fault.body
                if fault.drip_seconds:
                    self._drip(fault, payload)
                elif fault.pad_bytes or not fault.declare_length:
                    self._send_large(fault, payload)
                else:
                    self._send(fault.status, payload, fault.content_type, fault.headers)
                return
        record("forwarded")
        self._forward(route["endpoint"], query, body)

    def _forward(self, endpoint: str, query: str, body: bytes) -> None:
        upstream = self.server.proxy.upstream
        target = f"/api/v1/{endpoint}" + (f"?{query}" if query else "")
        connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
        try:
            forward_headers = {"Content-Type": self.headers.get("Content-Type", "")} if body else {}
            connection.request(self.command, target, body=body or None, headers=forward_headers)
            response = connection.getresponse()
            payload = response.read()
            self._send(response.status, payload, response.getheader("Content-Type", "application/json"))
        except OSError as exc:
            # Like AMP when its backend is unreachable: a 503 the client may retry.
            message = json.dumps({"message": f"upstream unavailable: {exc}"}).encode()
            self._send(503, message, "application/json")
        finally:
            connection.close()

    def _send_large(self, fault: Fault, payload: bytes) -> None:
        assert fault.status is not None
        chunk = b" " * 65536
        try:
            self.send_response(fault.status)
            self.send_header("Content-Type", fault.content_type)
            if fault.declare_length:
                self.send_header("Content-Length", str(len(payload) + fault.pad_bytes))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(data: bytes) -> None:
                if fault.declare_length:
                    self.wfile.write(data)
                elif data:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

            # The padding goes before the closing brace of a JSON body, so the answer stays JSON.
            head, tail = (payload[:-1], payload[-1:]) if payload.endswith(b"}") else (payload, b"")
            write(head)
            left = fault.pad_bytes
            while left > 0:
                write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            write(tail)
            if not fault.declare_length:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            # The client gave up (its byte cap or deadline cut the answer off), as intended.
            self.close_connection = True

    def _drip(self, fault: Fault, payload: bytes) -> None:
        assert fault.status is not None
        lines = [f"HTTP/1.1 {fault.status} Dripping", f"Content-Type: {fault.content_type}"]
        # Without a length the body ends when the connection closes (a client cut off early
        # sees a short body, not an error).
        lines.append(f"Content-Length: {len(payload)}" if fault.declare_length else "Connection: close")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        self.close_connection = True
        try:
            for start in range(0, len(raw), fault.drip_bytes):
                self.wfile.write(raw[start : start + fault.drip_bytes])
                self.wfile.flush()
                time.sleep(fault.drip_seconds)
        except OSError:
            pass

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            # The client gave up (e.g. its read timeout fired during an injected delay).
            self.close_connection = True
