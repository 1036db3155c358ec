"""``ampscaler import``: argument parsing, output formats, --out-dir files and exit status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ampscaler.cli import importer
from tests.unit.importers.support import FIXTURES, assert_valid_rule


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ampscaler")
    subparsers = parser.add_subparsers(dest="command")
    importer.register(subparsers)
    # ampscaler.cli.main adds --output to every sub-parser; mirror that here.
    subparsers.choices["import"].add_argument("--output", "-o", choices=("table", "json"), default="table")
    args = parser.parse_args(["import", *argv])
    assert args.func is importer.run
    return int(args.func(args))


def _fx(name: str) -> str:
    return str(FIXTURES / name)


def test_import_json_prints_a_list_of_valid_rules_and_problems_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _run(
        _fx("hpa-v2.yaml"),
        _fx("keda-scaledobjects.yaml"),
        "--adapter-config",
        _fx("adapter-configmap.yaml"),
        "--cluster",
        "prod",
        "--output",
        "json",
    )

    out, err = capsys.readouterr()
    documents = json.loads(out)
    assert code == 0
    assert [d["target"]["name"] for d in documents] == ["frontend", "orders", "reports", "storefront"]
    for document in documents:
        assert_valid_rule(document)
    assert "not converted: ScaledObject analytics/reports spec.triggers[1]: kafka trigger" in err
    assert 'note: adapter config: read ConfigMap adapter-config data["config.yaml"]' in err


def test_import_table_lists_every_item_with_status(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(_fx("hpa-list.yaml"), "--adapter-config", _fx("adapter-configmap.yaml"), "--cluster", "prod")

    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ITEM", "STATUS", "RULE", "METRICS"]
    assert lines[1].split() == [
        "HorizontalPodAutoscaler",
        "shop/api",
        "converted",
        "prod__shop__api",
        "cpu,",
        "memory-app",
    ]
    assert lines[2].split() == ["HorizontalPodAutoscaler", "shop/keda-hpa-orders", "skipped", "-", "-"]
    assert lines[3].split() == [
        "HorizontalPodAutoscaler",
        "default/legacy",
        "converted",
        "prod__default__legacy",
        "queue_messages_ready",
    ]
    assert "not converted:" in lines
    assert (
        "  HorizontalPodAutoscaler shop/keda-hpa-orders: created by KEDA for ScaledObject 'orders'; "
        "import the ScaledObject instead"
    ) in lines


def test_import_out_dir_writes_one_file_per_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "rules"
    code = _run(_fx("keda-scaledobjects.yaml"), "--cluster", "prod", "--out-dir", str(out_dir))

    out, _ = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "prod__analytics__reports.json",
        "prod__shop__orders.json",
        "prod__shop__storefront.json",
    ]
    orders = json.loads((out_dir / "prod__shop__orders.json").read_text())
    assert orders["metrics"][1]["name"] == "backlog"
    assert_valid_rule(orders)
    assert str(out_dir / "prod__shop__orders.json") in out


def test_import_without_cluster_names_files_by_namespace_and_name(tmp_path: Path) -> None:
    code = _run(_fx("keda-scaledobjects.yaml"), "--out-dir", str(tmp_path), "--output", "json")

    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "analytics__reports.json",
        "shop__orders.json",
        "shop__storefront.json",
    ]


def test_import_nothing_converted_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(_fx("hpa-v2beta2.yaml"), "--output", "json")

    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out) == []
    assert "error: no rule converted (1 item(s) read)" in err


def test_import_unreadable_file_exits_1_but_still_converts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [\n")
    code = _run(_fx("keda-scaledobjects.yaml"), str(broken), str(tmp_path / "missing.yaml"), "-o", "json")

    out, err = capsys.readouterr()
    assert code == 1
    assert len(json.loads(out)) == 3
    assert f"error: {broken}: invalid YAML" in err
    assert f"error: {tmp_path / 'missing.yaml'}: cannot read: No such file or directory" in err


def test_import_bad_adapter_config_exits_1_before_converting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "adapter.yaml"
    bad.write_text("kind: ConfigMap\nmetadata: {name: adapter}\ndata: {}\n")
    code = _run(_fx("hpa-v2.yaml"), "--adapter-config", str(bad))

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.strip() == (
        f"error: --adapter-config {bad}: adapter ConfigMap adapter: no data key holds "
        "rules/externalRules/resourceRules (keys: none)"
    )


def test_import_duplicate_rule_names_keep_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(
        _fx("keda-scaledobjects.yaml"), _fx("keda-scaledobjects.yaml"), "--cluster", "prod", "-o", "json"
    )

    out, err = capsys.readouterr()
    assert code == 0
    assert len(json.loads(out)) == 3
    assert "same rule name 'prod__shop__orders' as ScaledObject shop/orders; rename one of them" in err


def test_import_with_an_argo_application_adapter_config_applies_its_relabelled_resource_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _run(_fx("hpa-cpu-legacy.yaml"), "--adapter-config", _fx("adapter-argocd.yaml"), "-o", "json")

    out, err = capsys.readouterr()
    documents = json.loads(out)
    assert code == 0
    assert [d["target"]["name"] for d in documents] == ["php-apache", "podinfo", "podinfo"]
    cpu = documents[0]["metrics"][0]
    assert cpu["series"] == {
        "namespaceLabel": "kubernetes_namespace",
        "podLabel": "kubernetes_pod_name",
        "containerLabel": "container_name",
        "windowSeconds": 120,
    }
    for document in documents:
        assert_valid_rule(document)
    assert "note: adapter config: Application prometheus-adapter: spec.sources[1].helm.valueFiles" in err
