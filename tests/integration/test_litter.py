"""Fixtures leave nothing in the temp directory: a whole pytest session of fixture lifecycles (the
kube simulator with a client that reached it, and a LocalStack whose cluster a client reached) runs
with a private ``TMPDIR``, which must be empty afterwards. The control run leaves out the cleanup
plugin and shows the file the check is about."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

INNER_TESTS = """
import base64

from ampscaler.adapters.eks_token import EksClusterInfo, EksTokenProvider
from ampscaler.adapters.kube import EksScaleTarget
from ampscaler.model import ScaleTargetRef
from botocore.credentials import Credentials
import pytest

from devstack.stack import CLUSTER, LocalStack


def test_kube_fixtures_read_a_scale(kube_sim, kube_target):
    kube_sim.add_deployment("shop", "web", 2)
    ref = ScaleTargetRef("prod", "shop", "Deployment", "web")
    assert kube_target.read_scale(ref).scale.spec_replicas == 2


@pytest.fixture
def stack():
    with LocalStack() as local:
        yield local


def test_local_stack_cluster_is_reachable(stack):
    creds = stack.moto.aws_env()
    tokens = EksTokenProvider(
        stack.moto.region,
        credentials=Credentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"], "token"),
    )
    info = EksClusterInfo(CLUSTER, stack.kube.url, base64.b64encode(stack.kube.ca_pem).decode("ascii"))
    target = EksScaleTarget(tokens, lambda name: info)
    stack.kube.add_deployment("shop", "web", 3)
    try:
        assert target.read_scale(ScaleTargetRef(CLUSTER, "shop", "Deployment", "web")).scale.spec_replicas == 3
    finally:
        target.close()
"""


def _run_inner(tmp_path: Path, plugins: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run INNER_TESTS in a child pytest with ``TMPDIR`` private; return it and what is left there."""
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {
        **os.environ,
        "TMPDIR": str(private_tmp),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "ampscaler"), str(ROOT)]),
    }
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    for plugin in plugins:
        args += ["-p", plugin]
    done = subprocess.run(
        [*args, "--basetemp", str(tmp_path / "basetemp"), str(tmp_path / "test_inner.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang bound; the session takes seconds
        check=False,
    )
    return done, sorted(entry.name for entry in private_tmp.iterdir())


def test_fixture_lifecycles_leave_the_temp_directory_empty(tmp_path: Path) -> None:
    done, left = _run_inner(tmp_path, ["tests.fixtures.aws", "tests.fixtures.kube", "tests.fixtures.litter"])

    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert left == []


def test_without_the_cleanup_plugin_the_ca_files_are_left(tmp_path: Path) -> None:
    """The control: the check above would see the litter if the cleanup were missing."""
    done, left = _run_inner(tmp_path, ["tests.fixtures.aws", "tests.fixtures.kube"])

    assert done.returncode == 0, done.stdout + done.stderr
    assert len([name for name in left if name.startswith("ampscaler-eks-ca-")]) == 2, left
