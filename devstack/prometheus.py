"""Launch Debian's real ``prometheus`` binary on a free loopback port with a throwaway data directory.

The server accepts remote write (``--web.enable-remote-write-receiver``) and out-of-order samples
(``storage.tsdb.out_of_order_time_window`` in the config file), so tests and the demo can write
samples with past timestamps; retention is long so backfilled history (devstack.backfill) is kept.
The admin API is on so a caller may delete series between scenarios.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PROMETHEUS_BINARY = "/usr/bin/prometheus"

# Scraping is not used (data only arrives by remote write or backfill); a long interval keeps the
# server quiet. The out-of-order window lets remote write append samples older than the newest one.
_CONFIG_TEMPLATE = """\
global:
  scrape_interval: 1h
  evaluation_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: {ooo_window}
"""

# Every live server, so an interpreter exit (even after a failed test session) kills them all.
_LIVE: weakref.WeakSet[PrometheusServer] = weakref.WeakSet()


def _kill_all_at_exit() -> None:
    for server in list(_LIVE):
        server.stop()


atexit.register(_kill_all_at_exit)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Linux only: ask the kernel to SIGTERM the child when this process dies, so a SIGKILLed test
    # run does not leave Prometheus behind. Runs in the child between fork and exec.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class PrometheusServer:
    """A real Prometheus process owned by this Python process.

    Parameters
    ----------
    binary
        Path to the ``prometheus`` executable.
    data_dir
        TSDB directory; a temporary one (deleted on stop) when None.
    out_of_order_window
        ``storage.tsdb.out_of_order_time_window``: how far before the newest sample remote write
        may still append.
    retention
        ``--storage.tsdb.retention.time``; long so backfilled history is never deleted.
    lookback_delta
        ``--query.lookback-delta``; None keeps Prometheus's (and AMP's) 5m default.
    extra_args
        Further command-line flags.
    startup_timeout_seconds
        How long to wait for ``/-/ready``.
    """

    def __init__(
        self,
        *,
        binary: str = PROMETHEUS_BINARY,
        data_dir: str | Path | None = None,
        out_of_order_window: str = "30d",
        retention: str = "3650d",
        lookback_delta: str | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout_seconds: float = 30.0,
    ) -> None:
        self.binary = binary
        self.out_of_order_window = out_of_order_window
        self.retention = retention
        self.lookback_delta = lookback_delta
        self.extra_args = extra_args
        self.startup_timeout_seconds = startup_timeout_seconds
        self._base = Path(tempfile.mkdtemp(prefix="ampscaler-prometheus-"))
        self.data_dir = Path(data_dir) if data_dir is not None else self._base / "data"
        self.config_path = self._base / "prometheus.yml"
        self.log_path = self._base / "prometheus.log"
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        # Registered from the start so an interpreter exit also removes a never-started temp dir.
        _LIVE.add(self)

    # -- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        if self.port is None:
            raise RuntimeError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def remote_write_url(self) -> str:
        """The remote-write receiver endpoint."""
        return f"{self.url}/api/v1/write"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the process and wait until ``/-/ready`` answers 200.

        A new free port is picked on the first start; a restart reuses the same port so URLs handed
        out earlier (e.g. to a proxy) stay valid.

        Raises
        ------
        RuntimeError
            When the binary is missing, exits early, or is not ready in time (with the log tail).
        """
        if self.running:
            return self
        if not Path(self.binary).exists():
            raise RuntimeError(f"{self.binary} not found: install Debian's 'prometheus' package")
        self._base.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_CONFIG_TEMPLATE.format(ooo_window=self.out_of_order_window))
        first_start = self.port is None
        # A freshly picked port can be taken between probe and bind; retry with another one.
        for attempt in range(3):
            if first_start and attempt:
                self.port = None
            if self.port is None:
                self.port = free_port()
            self._spawn()
            if self._wait_ready():
                _LIVE.add(self)
                return self
            self._terminate()
            if not first_start:
                break
        raise RuntimeError(f"Prometheus did not become ready; log tail:\n{self.log_tail()}")

    def _spawn(self) -> None:
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
            *([f"--query.lookback-delta={self.lookback_delta}"] if self.lookback_delta else []),
            *self.extra_args,
        ]
        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._base,
            # Only calls prctl in the child, which is safe between fork and exec.
            preexec_fn=_die_with_parent,
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout_seconds
        while time.monotonic() < deadline:
            if not self.running:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and delete its temporary files.

        A caller-supplied ``data_dir`` is kept; the temporary one is deleted.
        """
        self._terminate()
        _LIVE.discard(self)
        # The base dir holds config, log and (unless the caller supplied one) the data dir.
        shutil.rmtree(self._base, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start on the same port and data; new blocks in the data dir are loaded on start."""
        self._terminate()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- conveniences ----------------------------------------------------------------------------

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        """Run an unsigned instant query directly against this server and return ``data``.

        For fixtures and the demo only; ampscaler itself goes through ``AmpMetricsSource``.
        """
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{at:.3f}"
        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            payload: dict[str, Any] = json.loads(response.read())
        data: dict[str, Any] = payload["data"]
        return data

    def delete_series(self, *matchers: str) -> None:
        """Delete every series matching the selectors (admin API), e.g. ``'{__name__=~"demo_.*"}'``."""
        query = urllib.parse.urlencode([("match[]", m) for m in matchers])
        request = urllib.request.Request(f"{self.url}/api/v1/admin/tsdb/delete_series?{query}", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


def main() -> None:  # pragma: no cover - manual helper
    """Run a server in the foreground until Ctrl-C: ``python -m devstack.prometheus``."""
    with PrometheusServer() as server:
        print(f"Prometheus at {server.url} (data {server.data_dir}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(1)


if __name__ == "__main__":  # pragma: no cover
    main()
