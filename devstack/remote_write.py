"""Push samples to a Prometheus remote-write receiver (remote write 1.0: protobuf + snappy), stdlib only.

The WriteRequest message is tiny, so it is encoded by hand instead of pulling in protobuf, and the
snappy block is written with literal elements only: every snappy decoder must accept that (the
format allows a stream made solely of literals), it just does not compress. Test payloads are small,
so the missing compression costs nothing that matters.

Wire format (prometheus/prompb/types.proto, remote.proto)::

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in milliseconds
"""

from __future__ import annotations

import struct
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

Labels = Mapping[str, str]
Points = Sequence[tuple[float, float]]
Series = tuple[Labels, Points]

# Headers the receiver checks (storage/remote/write_handler.go and the remote write 1.0 spec).
REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "ampscaler-devstack/remote-write",
}


class RemoteWriteError(RuntimeError):
    """The receiver rejected the write; the message carries its HTTP status and answer."""


def _varint(value: int) -> bytes:
    # Protobuf encodes negative int64 as its 64-bit two's complement (always 10 bytes).
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    # Wire type 2 (length-delimited): strings and embedded messages.
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _encode_sample(timestamp_seconds: float, value: float) -> bytes:
    # value: field 1, wire type 1 (fixed64, little-endian double); timestamp: field 2, varint.
    millis = round(timestamp_seconds * 1000)
    return bytes([1 << 3 | 1]) + struct.pack("<d", value) + _varint(2 << 3 | 0) + _varint(millis)


def encode_write_request(series: Sequence[Series]) -> bytes:
    """Serialize ``series`` as an uncompressed prompb.WriteRequest.

    Parameters
    ----------
    series
        ``(labels, points)`` pairs; ``labels`` must hold ``__name__``; ``points`` are
        ``(unix_seconds, value)`` and are sent in time order, as the receiver requires.

    Returns
    -------
    bytes
        The protobuf message.
    """
    out = bytearray()
    for labels, points in series:
        if "__name__" not in labels:
            raise ValueError(f"series {dict(labels)!r} has no __name__ label")
        body = bytearray()
        # The TSDB expects labels sorted by name (labels.Labels invariant).
        for name in sorted(labels):
            label = _field_bytes(1, name.encode()) + _field_bytes(2, str(labels[name]).encode())
            body += _field_bytes(1, label)
        for ts, value in sorted(points, key=lambda point: point[0]):
            body += _field_bytes(2, _encode_sample(ts, float(value)))
        out += _field_bytes(1, bytes(body))
    return bytes(out)


def snappy_block(data: bytes) -> bytes:
    """Encode ``data`` as a snappy block made only of literal elements (valid, uncompressed).

    Format (google/snappy format_description.txt): the uncompressed length as a varint, then
    elements; a literal's tag byte has low bits 00 and holds ``len-1`` in its upper six bits when
    below 60, otherwise 60..63 saying that 1..4 little-endian bytes of ``len-1`` follow.
    """
    out = bytearray(_varint(len(data)))
    # Chunks of 64 KiB mirror what reference encoders emit; any literal length would be valid.
    chunk = 1 << 16
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        n = len(piece) - 1
        if n < 60:
            out.append(n << 2)
        else:
            size = (n.bit_length() + 7) // 8
            out.append((59 + size) << 2)
            out += n.to_bytes(size, "little")
        out += piece
    return bytes(out)


def write(url: str, series: Sequence[Series], *, timeout_seconds: float = 10.0) -> None:
    """Send ``series`` to the remote-write endpoint ``url`` (e.g. ``http://127.0.0.1:PORT/api/v1/write``).

    Parameters
    ----------
    url
        The receiver's write URL.
    series
        ``(labels, [(unix_seconds, value), ...])`` pairs; NaN and ±Inf values are sent as-is.
    timeout_seconds
        Socket timeout for the request.

    Raises
    ------
    RemoteWriteError
        When the receiver answers anything but 2xx (e.g. an out-of-bounds sample), with its message.
    """
    payload = snappy_block(encode_write_request(series))
    request = urllib.request.Request(url, data=payload, method="POST", headers=REMOTE_WRITE_HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise RemoteWriteError(f"remote write to {url} failed: HTTP {exc.code}: {detail}") from exc
