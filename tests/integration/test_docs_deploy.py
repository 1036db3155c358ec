"""docs/deploy.md as a new user would follow it: every shell command is checked, the SSM ones run.

Each ```bash block must pass ``bash -n`` and use only known commands, with every ``aws`` call
naming a real service operation. The blocks that store the first rule run for real against the
suite's moto server (the ``aws`` CLI when installed, otherwise a boto3 stand-in for the two SSM
calls), and the stored rule must parse with ``ampscaler.rule.parse_rule``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import botocore.session
import pytest

from ampscaler.rule import parse_rule

REPO = Path(__file__).resolve().parents[2]
DEPLOY_MD = REPO / "docs" / "deploy.md"
RULE_PARAMETER = "/ampscaler/rules/frontend"

ALLOWED_COMMANDS = {"aws", "sam", "kubectl", "git", "cd", "cat", "sed", "export"}
SAM_SUBCOMMANDS = {"build", "deploy", "delete", "validate"}
KUBECTL_SUBCOMMANDS = {"get", "describe", "apply", "delete", "edit", "auth", "create"}
# aws CLI commands that are CLI customizations rather than API operations.
AWS_CUSTOMIZATIONS = {("logs", "tail")}
# What the moto run may execute: anything else in those blocks would go untested.
RUNNABLE = {"cat", "sed", "aws ssm put-parameter", "aws ssm get-parameter"}


def bash_blocks(markdown: str) -> list[str]:
    """The bodies of the ```bash fenced blocks, in document order (indented fences too)."""
    blocks = []
    for match in re.finditer(r"^( *)```bash\n(.*?)^\1```", markdown, re.S | re.M):
        indent = len(match.group(1))
        blocks.append(textwrap.dedent("\n".join(line[indent:] for line in match.group(2).splitlines())))
    return blocks


def commands(block: str) -> list[list[str]]:
    """Simple commands of a block as argv lists (heredoc bodies skipped, continuations joined).

    Commands inside ``$( ... )`` count too; a leading ``NAME=value`` assignment is dropped.
    """
    logical: list[str] = []
    lines = iter(block.splitlines())
    pending = ""
    for line in lines:
        line = pending + line
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", line)
        if heredoc:
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
            line = line[: heredoc.start()]
        logical.append(line)
    result: list[list[str]] = []
    for line in logical:
        for inner in re.findall(r"\$\(([^()]*)\)", line):
            result.extend(commands(inner))
        line = re.sub(r"\$\([^()]*\)", "SUBST", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", ";", "|", ">", ">>", "<", "&"}:
                if argv:
                    result.append(argv)
                argv = []
                if token in {">", ">>", "<"}:
                    argv = ["<redirect>"]  # the next word is a file name, not a command
                continue
            if argv == ["<redirect>"]:
                argv = []
                continue
            if not argv and re.fullmatch(r"[A-Za-z_]\w*=.*", token):
                continue
            argv.append(token)
    return result


def first_words(argv: list[str], count: int) -> str:
    return " ".join(argv[:count])


def test_deploy_md_blocks_are_valid_bash() -> None:
    blocks = bash_blocks(DEPLOY_MD.read_text())
    assert len(blocks) >= 5
    for block in blocks:
        result = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert result.returncode == 0, f"{result.stderr}\n---\n{block}"


def test_deploy_md_uses_only_known_commands_and_real_aws_operations() -> None:
    session = botocore.session.get_session()
    services = set(session.get_available_services())
    seen: set[str] = set()
    for block in bash_blocks(DEPLOY_MD.read_text()):
        for argv in commands(block):
            assert argv[0] in ALLOWED_COMMANDS, f"unknown command {argv[0]!r} in: {shlex.join(argv)}"
            seen.add(argv[0])
            if argv[0] == "aws":
                service, operation = argv[1], argv[2]
                if (service, operation) in AWS_CUSTOMIZATIONS:
                    continue
                assert service in services, shlex.join(argv)
                model = session.get_service_model(service)
                api_name = "".join(part.capitalize() for part in operation.split("-"))
                assert api_name in model.operation_names, f"aws {service} has no {operation}"
                for option in (a for a in argv[3:] if a.startswith("--")):
                    name = option[2:].split("=")[0]
                    if name in {"query", "output", "region", "max-items", "overwrite", "no-overwrite"}:
                        continue
                    input_shape = model.operation_model(api_name).input_shape
                    assert input_shape is not None
                    members = input_shape.members
                    assert any(re.sub(r"(?<!^)(?=[A-Z])", "-", m).lower() == name for m in members), (
                        f"aws {service} {operation} has no option --{name}"
                    )
            elif argv[0] == "sam":
                assert argv[1] in SAM_SUBCOMMANDS, shlex.join(argv)
            elif argv[0] == "kubectl":
                words = iter(argv[1:])
                for word in words:
                    if word in {"-n", "--namespace", "--context"}:
                        next(words)  # the flag's value
                    elif not word.startswith("-"):
                        assert word in KUBECTL_SUBCOMMANDS, shlex.join(argv)
                        break
    assert {"sam", "aws", "kubectl"} <= seen


def test_commands_parser_splits_chains_substitutions_and_heredocs() -> None:
    block = textwrap.dedent(
        """\
        git clone "$URL" x && cd x
        cat > f.json <<'EOF'
        {"not": "a command"}
        EOF
        T=$(aws cloudformation describe-stacks --stack-name s --output text)
        aws ssm put-parameter \\
          --name /a --value file://f.json  # trailing comment
        """
    )
    assert [a[0] for a in commands(block)] == ["git", "cd", "cat", "aws", "aws"]
    assert commands(block)[-1] == ["aws", "ssm", "put-parameter", "--name", "/a", "--value", "file://f.json"]


BOTO3_AWS_STANDIN = '''\
"""Stand-in for the two `aws ssm` calls docs/deploy.md makes, used when the aws CLI is absent."""
import argparse, sys
from pathlib import Path
import boto3

parser = argparse.ArgumentParser()
parser.add_argument("service", choices=["ssm"])
parser.add_argument("operation", choices=["put-parameter", "get-parameter"])
parser.add_argument("--name", required=True)
parser.add_argument("--type")
parser.add_argument("--value")
parser.add_argument("--overwrite", action="store_true")
parser.add_argument("--query")
parser.add_argument("--output")
args = parser.parse_args()
ssm = boto3.client("ssm")
if args.operation == "put-parameter":
    value = args.value
    if value.startswith("file://"):
        value = Path(value[len("file://"):]).read_text()
    out = ssm.put_parameter(Name=args.name, Type=args.type, Value=value, Overwrite=args.overwrite)
    print(out["Version"])
else:
    param = ssm.get_parameter(Name=args.name)["Parameter"]
    assert args.query == "Parameter.Version", args.query
    print(param["Version"])
'''


def aws_cli_path(tmp_path: Path) -> str:
    """PATH with the real aws CLI when it works here, else with the boto3 stand-in first."""
    path = os.environ.get("PATH", "")
    aws = shutil.which("aws")
    if aws and subprocess.run([aws, "--version"], capture_output=True).returncode == 0:
        return path
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = bin_dir / "aws"
    standin.write_text(f"#!{sys.executable}\n{BOTO3_AWS_STANDIN}")
    standin.chmod(standin.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}{os.pathsep}{path}"


@pytest.mark.integration
def test_first_rule_commands_store_a_valid_rule_in_ssm(aws_env: dict[str, str], tmp_path: Path) -> None:
    blocks = [b for b in bash_blocks(DEPLOY_MD.read_text()) if "aws ssm put-parameter" in b]
    assert len(blocks) == 2, "expected the 'first rule' block and the 'turn dry-run off' block"
    for block in blocks:
        for argv in commands(block):
            runnable = argv[0] if argv[0] != "aws" else first_words(argv, 3)
            assert runnable in RUNNABLE, f"{shlex.join(argv)} would not be tested against moto"
    env = {**os.environ, **aws_env, "PATH": aws_cli_path(tmp_path)}
    outputs = []
    for block in blocks:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    # The get-parameter right after the first put prints the version the user should see.
    assert outputs[0].split()[-1] == "1"
    ssm = boto3.client("ssm")
    parameter = ssm.get_parameter(Name=RULE_PARAMETER)["Parameter"]
    assert parameter["Version"] == 2
    assert parameter["Type"] == "String"
    document = json.loads(parameter["Value"])
    assert document["dryRun"] is False
    rule = parse_rule(parameter["Value"], name="frontend")
    assert rule.target.namespace == "shop" and rule.target.name == "frontend"
    assert not rule.dry_run


def test_first_rule_command_output_matches_the_documented_command() -> None:
    text = (REPO / "template.yaml").read_text()
    (line,) = [ln for ln in text.splitlines() if "aws ssm put-parameter" in ln]
    documented = [
        argv
        for block in bash_blocks(DEPLOY_MD.read_text())
        for argv in commands(block)
        if argv[:3] == ["aws", "ssm", "put-parameter"]
    ]
    assert documented
    output_argv = shlex.split(line.split("!Sub ", 1)[1].replace("${RulePrefix}", "/ampscaler/rules/"))
    output_argv = [a for a in output_argv if "${AWS::Region}" not in a and a != "--region"]
    assert output_argv == documented[0]


def test_parameter_table_lists_exactly_the_template_parameters() -> None:
    from tests.unit.test_template import load_template

    parameters = set(load_template()["Parameters"])
    documented = set(re.findall(r"^\| `(\w+)` \|", DEPLOY_MD.read_text(), re.M))
    assert documented == parameters


def test_every_manifest_the_doc_applies_exists_and_both_access_modes_are_described() -> None:
    text = DEPLOY_MD.read_text()
    applied = {
        argv[argv.index("-f") + 1]
        for block in bash_blocks(text)
        for argv in commands(block)
        if argv[:2] in (["kubectl", "apply"], ["kubectl", "delete"]) and "-f" in argv
    }
    assert "docs/rbac-cluster.yaml" in applied
    for path in applied | set(re.findall(r"docs/rbac-[\w-]+\.yaml", text)):
        assert (REPO / path).exists(), path
    for words in ("`rbac` (recommended)", "`access-policy`", "AmazonEKSEditPolicy", "ampscaler:scalers"):
        assert words in text
    for variable in (
        "ALLOWED_NAMESPACES",
        "ALLOWED_CLUSTERS",
        "MAX_REPLICAS_CEILING",
        "ALLOWED_PROMETHEUS_URLS",
    ):
        assert f"`{variable}`" in text
