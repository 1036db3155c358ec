"""bounded_http without a server: the deadline watchdog on socket pairs, and untrusted-text helpers."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ampscaler.adapters.bounded_http import (
    RequestBounds,
    current_bounds,
    quote_response,
    redact_text,
    redact_url,
    strip_responses,
)


def test_deadline_shuts_a_blocked_read_down() -> None:
    reader, writer = socket.socketpair()
    with reader, writer, RequestBounds(time.time() + 0.2) as bounds:
        bounds.watch(reader)
        started = time.monotonic()
        # Nothing is ever written: only the deadline ends this read (EOF after the shutdown).
        assert reader.recv(1) == b""
        elapsed = time.monotonic() - started
    assert bounds.fired
    assert elapsed < 10  # the socket has no timeout at all: without the watchdog it never returns


def test_finished_bounds_never_touch_their_sockets_again() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        with RequestBounds(time.time() + 0.05) as bounds:
            bounds.watch(reader)
        time.sleep(0.3)  # well past the deadline of bounds that already exited
        writer.sendall(b"x")
        assert reader.recv(1) == b"x"  # still open: a pooled connection stays usable
        assert not bounds.fired


def test_bounds_nest_and_are_per_thread() -> None:
    seen: list[RequestBounds | None] = []
    with RequestBounds(time.time() + 5) as outer:
        with RequestBounds(time.time() + 5) as inner:
            assert current_bounds() is inner
            worker = threading.Thread(target=lambda: seen.append(current_bounds()))
            worker.start()
            worker.join()
        assert current_bounds() is outer
    assert current_bounds() is None and seen == [None]


def test_no_deadline_arms_nothing() -> None:
    with RequestBounds(float("inf")) as bounds:
        assert current_bounds() is bounds
    assert not bounds.fired


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://alice:hunter2@prom.example.com:9090/p?token=abc#x", "https://prom.example.com:9090/p"),
        ("http://[::1]:9/x", "http://[::1]:9/x"),
        ("https://prom.example.com", "https://prom.example.com"),
    ],
)
def test_redact_url_drops_userinfo_query_and_fragment(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_quoted_server_text_is_bounded_single_line_redacted_and_strippable() -> None:
    text = quote_response(b"line1\nBearer abc.def\x00 https://u:pw@h/ \xe2\x9f\xa6" + b"z" * 500)
    assert "\n" not in text and "abc.def" not in text and "u:pw@" not in text
    assert len(text) < 220 and text.endswith("...\u27e7")
    assert (
        strip_responses(f"before {text} after")
        == "before (server response omitted; see the scaler log) after"
    )


def test_redact_text_masks_signatures_and_tokens() -> None:
    text = (
        "X-Amz-Security-Token=FQoGZXIvYXdzE%2Fabc&X-Amz-Signature=deadbeef "
        "Credential=AKIAEXAMPLE0000000000/2026 k8s-aws-v1.aHR0cHM6Ly9zdHM"
    )
    redacted = redact_text(text)
    for secret in ("FQoGZXIvYXdzE", "deadbeef", "AKIAEXAMPLE0000000000", "aHR0cHM6Ly9zdHM"):
        assert secret not in redacted
