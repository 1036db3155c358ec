"""moto in server mode on a free loopback port, in its own process, for tests, the demo and bench.

The server runs in a child process so its in-memory AWS state lives outside the process under
test: the code under test reaches it exactly as Lambda reaches AWS, through boto3 honouring
``AWS_ENDPOINT_URL`` (boto3 >= 1.28), never through moto's in-process mocks.

Run ``python -m devstack.moto`` to start one by hand; it prints the endpoint and the env to export.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

DEFAULT_REGION = "us-east-1"
# moto's default account; ARNs built in tests use it.
ACCOUNT_ID = "123456789012"
_READY_PREFIX = "AMPSCALER_MOTO_PORT="
_REPO_ROOT = Path(__file__).resolve().parent.parent


class MotoServer:
    """A moto server child process bound to 127.0.0.1 on a port the OS picked.

    Parameters
    ----------
    region:
        Region written into ``aws_env()``.
    start_timeout_seconds:
        How long to wait for the child to report its port.

    Examples
    --------
    >>> with MotoServer() as moto:                      # doctest: +SKIP
    ...     os.environ.update(moto.aws_env())
    ...     boto3.client("ssm").put_parameter(...)
    """

    def __init__(self, region: str = DEFAULT_REGION, start_timeout_seconds: float = 30.0) -> None:
        self.region = region
        self._start_timeout_seconds = start_timeout_seconds
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._stderr: IO[str] | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (after ``start``)."""
        if self._port is None:
            raise RuntimeError("MotoServer is not running; call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``AWS_ENDPOINT_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        """Start the child process and wait until it listens; returns self."""
        if self._process is not None:
            return self
        env = dict(os.environ)
        # The child must import devstack even when the package is not installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        # stderr goes to a file: a pipe nobody reads could fill and block the server.
        # Lives from start() to stop(), so no with-block.
        self._stderr = tempfile.TemporaryFile(mode="w+", prefix="moto-server-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto", "--child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            cwd=str(_REPO_ROOT),
        )
        port = self._read_port()
        if port is None:
            self._stderr.seek(0)
            output = self._stderr.read()[-2000:]
            self.stop()
            raise RuntimeError(
                f"moto server did not report its port within {self._start_timeout_seconds}s "
                f"(is moto[server] installed in this interpreter?); its stderr:\n{output}"
            )
        self._port = port
        return self

    def _read_port(self) -> int | None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        found: list[int] = []

        def reader() -> None:
            for line in stdout:
                if line.startswith(_READY_PREFIX):
                    found.append(int(line[len(_READY_PREFIX) :].strip()))
                    return

        # readline() has no timeout; a daemon thread bounds the wait without select() tricks.
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(self._start_timeout_seconds)
        return found[0] if found else None

    def stop(self) -> None:
        """Stop the child process (idempotent)."""
        process, self._process, self._port = self._process, None, None
        if process is None:
            return
        if process.stdin is not None:
            # Closing stdin is the child's signal to exit; it also exits if this process dies.
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def reset(self) -> None:
        """Drop every resource in every moto backend (POST /moto-api/reset)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def aws_env(self) -> dict[str, str]:
        """Environment for boto3 to reach this server with the same code Lambda runs.

        Fake static credentials (moto accepts any), the region, and ``AWS_ENDPOINT_URL``, which
        boto3 >= 1.28 applies to every service client. Config and credential files point at
        ``os.devnull`` so a developer's ``~/.aws`` can neither leak in nor redirect a client.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Variables a developer's shell may set that would send boto3 elsewhere; callers that apply
# ``aws_env()`` should remove these.
CONFLICTING_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


def _serve_child() -> None:
    """Child-process body: serve on a free port, report it on stdout, exit when stdin closes.

    Built like moto's ThreadedMotoServer, except that requests are handled one at a time:
    moto's backends do not make a conditional write atomic against a concurrent request, while
    DynamoDB (and SSM) do, and the lease tests race invocations on purpose. Threads still accept
    connections, so an idle keep-alive connection never blocks another client.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            # Consume the body inside the lock: the backend work may be lazy.
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, serialized, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"{_READY_PREFIX}{server.server_port}", flush=True)
    # Block until the parent closes stdin (or dies, which closes it too).
    sys.stdin.read()
    server.shutdown()
    thread.join(5)


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.moto``: run a server in the foreground until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--child"]:
        _serve_child()
        return
    with MotoServer() as moto:
        print(json.dumps(moto.aws_env(), indent=2))
        print(f"moto server at {moto.endpoint_url}; Ctrl-C to stop", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
