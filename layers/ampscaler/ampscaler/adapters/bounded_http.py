"""Bounds on what crosses the network: one deadline per request, capped bodies, server text quoted.

Socket timeouts bound each read, not the request: a server that sends one byte just inside the
read timeout holds a request forever. ``RequestBounds`` arms a timer for the whole request
(connect, send, headers, every body read) that shuts the connection's socket down at the
deadline, and caps the body bytes read through it. It works through urllib3 connection classes
(``guard_pool_manager``/``BoundedAdapter``), so both requests (AMP) and the kubernetes client
(which owns a urllib3 ``PoolManager``) get the same bounds. The cap is enforced on the bytes
read from the socket, before a body is ever whole in memory.

What it cannot bound: the TLS handshake (urllib3 hands the raw socket to ``ssl`` before a guard
can see the wrapped one) is bounded only by the connect timeout per handshake read.

Text a server sent (an error body) is untrusted: ``quote_response`` bounds and redacts it and marks
it, so ``strip_responses`` can drop it where it must never go (Kubernetes Events).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Server text kept in messages, in characters.
SNIPPET_CHARS = 200
_CHUNK = 64 * 1024
# Marks around server-supplied text in messages; stripped from the text itself first.
_OPEN, _CLOSE = "\u27e6", "\u27e7"
_QUOTED = re.compile(f"{_OPEN}[^{_OPEN}{_CLOSE}]*{_CLOSE}")
_SECRETS = (
    (re.compile(r"k8s-aws-v1\.[A-Za-z0-9_\-]+"), "k8s-aws-v1.<redacted>"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"']+"), r"\1<redacted>"),
    (re.compile(r"(?i)(X-Amz-(?:Security-Token|Signature|Credential)[=:]\s*)[^&\s\"']+"), r"\1<redacted>"),
    (re.compile(r"(?i)(Signature=)[0-9a-f]{16,}"), r"\1<redacted>"),
    (re.compile(r"(?i)(Credential=)[A-Z0-9]{16,}[^,\s\"']*"), r"\1<redacted>"),
    # userinfo in any URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@"), r"\1<redacted>@"),
)

_local = threading.local()


class ResponseTooLarge(Exception):
    """A response body is larger than the cap of the request reading it."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
        super().__init__(f"response body is {size}, over the {limit}-byte limit")


class RequestBounds:
    """While entered on a thread, requests sent there through guarded pools are bounded.

    Parameters
    ----------
    deadline
        Unix time (on ``clock``) at which every socket the request uses is shut down, whatever it
        is doing (connecting, sending, waiting for headers, reading the body).
    max_bytes
        Cap on the body bytes read from the socket per response; None for no cap.
    clock
        The clock ``deadline`` is on.
    """

    def __init__(
        self, deadline: float, max_bytes: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.deadline = deadline
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._previous: RequestBounds | None = None
        self._done = False
        # Set when the deadline shut a socket down: the request failed because of the deadline.
        self.fired = False

    def __enter__(self) -> Self:
        self._previous = getattr(_local, "bounds", None)
        _local.bounds = self
        remaining = max(0.0, self.deadline - self._clock())
        # No deadline (inf) or one days away: nothing to arm.
        if math.isfinite(remaining) and remaining < 86400:
            _WATCHDOG.arm(time.monotonic() + remaining, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _local.bounds = self._previous
        with self._lock:
            # From here on the watchdog leaves these sockets alone: they may be pooled and reused.
            self._done = True
            self._sockets.clear()

    def watch(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        if sock is None:
            return
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


class _Watchdog:
    """One daemon thread firing every armed ``RequestBounds`` at its deadline.

    A thread per request (threading.Timer) costs ~0.3 ms to start; arming here is a heap push.
    Entries of requests that finished stay in the heap until their time and are then skipped.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, RequestBounds]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, at_monotonic: float, bounds: RequestBounds) -> None:
        with self._condition:
            heapq.heappush(self._heap, (at_monotonic, next(self._order), bounds))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="request-deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    if not self._heap:
                        self._condition.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        _, _, due = heapq.heappop(self._heap)
                        break
                    self._condition.wait(delay)
            due._fire()


_WATCHDOG = _Watchdog()


def current_bounds() -> RequestBounds | None:
    """The bounds entered on this thread, if any."""
    bounds: RequestBounds | None = getattr(_local, "bounds", None)
    return bounds


def _shutdown(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the SSL object under the
    # thread that is reading; shutting the descriptor down makes that read return at once.
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _CappedResponse(http.client.HTTPResponse):
    """http.client's response counting body bytes against the cap of the bounds in force."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        bounds = current_bounds()
        self._cap = bounds.max_bytes if bounds is not None else None
        self._body_bytes = 0

    def _count(self, data: bytes) -> bytes:
        if self._cap is None:
            return data
        self._body_bytes += len(data)
        if self._body_bytes > self._cap:
            # The rest stays unread: close so the connection is never reused mid-body.
            self.close()
            raise ResponseTooLarge(self._cap)
        return data

    def read(self, amt: int | None = None) -> bytes:
        if self._cap is not None and self.length is not None and self.length > self._cap:
            declared = self.length + self._body_bytes
            self.close()
            raise ResponseTooLarge(self._cap, declared)
        if amt is None:
            # Never one unbounded read: chunks, so the cap holds before the body is in memory.
            parts: list[bytes] = []
            while chunk := self.read(_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        if self.chunked:
            # Chunked bodies are read through _safe_read, which counts.
            return super().read(amt)
        return self._count(super().read(amt))

    def read1(self, n: int = -1) -> bytes:
        if self.chunked:
            return super().read1(n)
        return self._count(super().read1(n))

    def _safe_read(self, amt: int) -> bytes:
        # Every chunk of a chunked body passes here (urllib3 reads chunks through it directly).
        if self._cap is not None and self._body_bytes + amt > self._cap:
            self.close()
            raise ResponseTooLarge(self._cap)
        return self._count(super()._safe_read(amt))  # type: ignore[misc]


class _Guarded:
    """Puts a connection's socket under the current request's bounds, whether new or pooled."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        bounds = current_bounds()
        if bounds is not None:
            bounds.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A pooled connection is reused without connect(): watch its socket here too.
        bounds = current_bounds()
        if bounds is not None and self.sock is not None:
            bounds.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    response_class = _CappedResponse


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    response_class = _CappedResponse


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


GUARDED_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _GuardedHTTPPool,
    "https": _GuardedHTTPSPool,
}


def guard_pool_manager(manager: PoolManager) -> None:
    """Make the pools ``manager`` creates from now on honour ``RequestBounds``."""
    manager.pool_classes_by_scheme = dict(GUARDED_POOL_CLASSES)


class BoundedAdapter(HTTPAdapter):
    """A requests adapter whose connections honour ``RequestBounds``; never retries on its own."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard_pool_manager(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        guard_pool_manager(manager)
        return manager


# -- untrusted text ------------------------------------------------------------------------------


def redact_text(text: str) -> str:
    """``text`` with credential-looking substrings (tokens, signatures, key ids, URL userinfo) masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def quote_response(body: bytes | str, limit: int = SNIPPET_CHARS) -> str:
    """Server-sent text for a message: at most ``limit`` characters, redacted, one line, marked.

    The marks let ``strip_responses`` remove it from messages that leave for readers who must not
    see what a (possibly rule-chosen) server said, such as Kubernetes Events.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    longer = len(text) > limit
    text = text[:limit]
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    text = redact_text(text)
    return f"{_OPEN}{text}{'...' if longer else ''}{_CLOSE}"


def strip_responses(message: str) -> str:
    """``message`` without any text ``quote_response`` marked (replaced by a pointer to the log)."""
    return _QUOTED.sub("(server response omitted; see the scaler log)", message)


def redact_url(url: str) -> str:
    """``url`` without userinfo, query or fragment, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
