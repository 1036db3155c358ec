"""Load long history (e.g. 24 h for backtests) into a PrometheusServer with promtool backfill.

Prometheus 2.42 only notices new blocks in its data directory when the TSDB reloads its blocks,
which its background loop does once a minute (and at startup). Measured with the Debian 2.42
binary: blocks written next to a running server became queryable after about 60 s. So the default
here restarts the server on the same port (about a second), which loads the blocks at once;
``reload="wait"`` instead polls until the data shows up, for callers that cannot restart.
Overlapping blocks are always accepted since 2.39, so backfilled ranges may overlap remote-written
ones.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from devstack.prometheus import PrometheusServer

PROMTOOL_BINARY = "/usr/bin/promtool"

Labels = Mapping[str, str]
Points = Sequence[tuple[float, float]]


def _escape(value: str) -> str:
    # OpenMetrics label values escape backslash, double quote and line feed.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def openmetrics_text(series: Sequence[tuple[Labels, Points]]) -> str:
    """Render ``(labels, [(unix_seconds, value), ...])`` pairs as OpenMetrics text ending in ``# EOF``.

    Metrics carry no ``# TYPE`` line (type unknown), which promtool accepts and which keeps any
    metric name legal. Each series' samples are written in time order, as promtool requires.
    """
    lines: list[str] = []
    for labels, points in series:
        name = labels.get("__name__")
        if not name:
            raise ValueError(f"series {dict(labels)!r} has no __name__ label")
        rest = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
        selector = f"{name}{{{rest}}}" if rest else name
        for ts, value in sorted(points, key=lambda point: point[0]):
            lines.append(f"{selector} {_number(value)} {ts:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def create_blocks(
    series: Sequence[tuple[Labels, Points]],
    data_dir: str | Path,
    *,
    promtool: str = PROMTOOL_BINARY,
    max_block_duration: str = "24h",
) -> None:
    """Write ``series`` as TSDB blocks into ``data_dir`` (``promtool tsdb create-blocks-from openmetrics``).

    Raises
    ------
    RuntimeError
        When promtool fails, with its output.
    """
    with tempfile.TemporaryDirectory(prefix="ampscaler-backfill-") as tmp:
        source = Path(tmp) / "input.om"
        source.write_text(openmetrics_text(series))
        result = subprocess.run(
            [
                promtool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                f"--max-block-duration={max_block_duration}",
                str(source),
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed ({result.returncode}): {result.stderr or result.stdout}")


def backfill(
    server: PrometheusServer,
    series: Sequence[tuple[Labels, Points]],
    *,
    reload: Literal["restart", "wait"] = "restart",
    check_query: str | None = None,
    wait_timeout_seconds: float = 90.0,
) -> None:
    """Backfill ``series`` into ``server`` and make them queryable.

    Parameters
    ----------
    server
        A started (or stopped) PrometheusServer; its data dir receives the blocks.
    series
        ``(labels, [(unix_seconds, value), ...])`` pairs.
    reload
        ``"restart"`` restarts the server on the same port (fast); ``"wait"`` leaves it running
        and polls ``check_query`` until it returns data (up to a minute on 2.42).
    check_query
        For ``"wait"``: a query that returns a non-empty result once the blocks are loaded;
        defaults to ``count({__name__="<first series name>"})``.
    wait_timeout_seconds
        For ``"wait"``: give up after this long.

    Raises
    ------
    RuntimeError
        When promtool fails or the data does not become visible in time.
    """
    if not series:
        return
    create_blocks(series, server.data_dir)
    if not server.running:
        return
    if reload == "restart":
        server.restart()
        return
    query = check_query or f'count({{__name__="{series[0][0]["__name__"]}"}})'
    newest = max(ts for _, points in series for ts, _ in points)
    deadline = time.monotonic() + wait_timeout_seconds
    while time.monotonic() < deadline:
        if server.query(query, at=newest).get("result"):
            return
        time.sleep(1)
    raise RuntimeError(f"backfilled data not visible after {wait_timeout_seconds} s (query {query!r})")
