"""Everything the scaler talks to, started locally and wired together: the one stack that the e2e
tests, ``make demo`` and ``bench/`` share.

- a real Prometheus (Debian's binary) behind the SigV4-verifying proxy that stands in for AMP;
- moto in server mode for SSM, DynamoDB, CloudWatch, Logs, STS and EKS;
- the Kubernetes API simulator over TLS, checking the scaler's IAM-derived bearer tokens.

All three accept the same static test credentials, so the handler runs with the ordinary boto3
credential chain and ``AWS_ENDPOINT_URL`` exactly as it does in Lambda. ``env()`` is the
environment a scaler function would see (what template.yaml sets, pointed at this stack).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import boto3

from ampscaler.adapters.state_dynamodb import create_table
from devstack import remote_write
from devstack.kube_sim import EksTokenValidator, KubeApiSimulator
from devstack.moto import CONFLICTING_ENV, MotoServer
from devstack.prometheus import PrometheusServer
from devstack.sigv4_proxy import SigV4Proxy

CLUSTER = "local"
WORKSPACE_ID = "ws-ampscaler-local"
STATE_TABLE = "ampscaler-state"
SLOT_QUEUE = "ampscaler-slots"
RULE_PREFIX = "/ampscaler/rules/"


class LocalStack:
    """Starts and wires the local components; a context manager that stops all of them.

    Parameters
    ----------
    ready_delay_seconds:
        How long a new pod of the simulated cluster stays Pending before it is Ready.
    lookback_delta:
        Prometheus ``--query.lookback-delta`` (how long a sample stays visible to instant queries).
    """

    def __init__(self, ready_delay_seconds: float = 0.0, lookback_delta: str | None = None) -> None:
        self.ready_delay_seconds = ready_delay_seconds
        self.lookback_delta = lookback_delta
        self._stack = ExitStack()
        self.moto: MotoServer
        self.prometheus: PrometheusServer
        self.proxy: SigV4Proxy
        self.kube: KubeApiSimulator

    def start(self) -> LocalStack:
        """Start every component (about 2 s) and create the state table."""
        try:
            self.moto = self._stack.enter_context(MotoServer())
            creds = self.moto.aws_env()
            key, secret = creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]
            prometheus_args: dict[str, Any] = {}
            if self.lookback_delta:
                prometheus_args["lookback_delta"] = self.lookback_delta
            self.prometheus = self._stack.enter_context(PrometheusServer(**prometheus_args))
            self.proxy = self._stack.enter_context(
                SigV4Proxy(
                    self.prometheus.url,
                    region=self.moto.region,
                    credentials={key: secret},
                    workspace_ids=(WORKSPACE_ID,),
                )
            )
            validator = EksTokenValidator(CLUSTER, secret_keys={key: secret})
            self.kube = self._stack.enter_context(
                KubeApiSimulator(
                    authenticator=validator, default_ready_delay_seconds=self.ready_delay_seconds
                )
            )
            self.create_state_table()
            self.create_slot_queue()
        except BaseException:
            self._stack.close()
            raise
        return self

    def close(self) -> None:
        """Stop every component."""
        self._stack.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wiring ------------------------------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        """The scaler function's environment, pointed at this stack."""
        cluster_endpoints = {
            CLUSTER: {"endpoint": self.kube.url, "caData": base64.b64encode(self.kube.ca_pem).decode("ascii")}
        }
        env = {
            **self.moto.aws_env(),
            "AMP_ENDPOINT_URL": self.proxy.url,
            "AMP_WORKSPACE_ID": WORKSPACE_ID,
            "AMP_REGION": self.moto.region,
            "CLUSTER_NAME": CLUSTER,
            "CLUSTER_ENDPOINTS": json.dumps(cluster_endpoints),
            "RULE_PREFIX": RULE_PREFIX,
            "STATE_TABLE": STATE_TABLE,
            "SLOT_QUEUE_URL": self.slot_queue_url,
            "POWERTOOLS_SERVICE_NAME": "ampscaler",
            "POWERTOOLS_METRICS_NAMESPACE": "ampscaler",
        }
        env.update(overrides)
        return env

    @contextmanager
    def environment(self, **overrides: str) -> Iterator[dict[str, str]]:
        """Set ``env()`` in ``os.environ`` for the block, restoring the previous values after."""
        env = self.env(**overrides)
        saved = {name: os.environ.get(name) for name in (*env, *CONFLICTING_ENV)}
        for name in CONFLICTING_ENV:
            os.environ.pop(name, None)
        os.environ.update(env)
        try:
            yield env
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def boto3_session(self) -> boto3.Session:
        """A boto3 session with the stack's credentials and region."""
        creds = self.moto.aws_env()
        return boto3.Session(
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"],
            region_name=self.moto.region,
        )

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` reaching moto."""
        return self.boto3_session().client(service, endpoint_url=self.moto.endpoint_url)  # type: ignore[call-overload]

    def create_state_table(self) -> None:
        """Create the DynamoDB state table as template.yaml declares it."""
        create_table(self.client("dynamodb"), STATE_TABLE)

    def create_slot_queue(self) -> str:
        """Create the slot queue as template.yaml declares it (after a moto reset too); its URL."""
        created = self.client("sqs").create_queue(
            QueueName=SLOT_QUEUE,
            Attributes={"MessageRetentionPeriod": "300", "VisibilityTimeout": "90"},
        )
        self.slot_queue_url: str = str(created["QueueUrl"])
        return self.slot_queue_url

    def put_rule(self, name: str, rule: Mapping[str, Any]) -> None:
        """Store ``rule`` as the SSM parameter ``RULE_PREFIX + name`` (overwriting)."""
        self.client("ssm").put_parameter(
            Name=RULE_PREFIX + name, Value=json.dumps(rule), Type="String", Overwrite=True
        )

    def delete_rule(self, name: str) -> None:
        """Delete the rule's SSM parameter."""
        self.client("ssm").delete_parameter(Name=RULE_PREFIX + name)

    def write_samples(self, series: Sequence[remote_write.Series]) -> None:
        """Remote-write samples into Prometheus: ``[(labels, [(unix_seconds, value), ...])]``."""
        remote_write.write(self.prometheus.remote_write_url, series)
