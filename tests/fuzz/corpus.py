"""Hostile documents from the issue and around it, as bytes: every entry point must answer each cleanly."""

from __future__ import annotations

import json
from typing import Final


def _alias_bomb(levels: int, indent: bool = False) -> bytes:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    body = "\n".join(lines)
    if indent:
        body = "apiVersion: ampscaler/v1\nmetrics:\n  - name: m\n    query: *l8\n" + body
    return (body + f"\nmaxReplicas: *l{levels - 1}\n").encode()


GOOD_RULE: Final = {
    "apiVersion": "ampscaler/v1",
    "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "web"},
    "minReplicas": 1,
    "maxReplicas": 10,
    "metrics": [
        {
            "name": "rps",
            "type": "Pods",
            "query": "sum by (pod) (rate(http_requests_total[2m]))",
            "target": {"type": "AverageValue", "averageValue": 10},
        }
    ],
}
GOOD_JSON: Final = json.dumps(GOOD_RULE).encode()
GOOD_YAML: Final = b"""\
apiVersion: ampscaler/v1
name: team/web
target: {cluster: prod, namespace: shop, kind: Deployment, name: web}
maxReplicas: 10
metrics:
  - {name: q, type: External, query: sum(q), target: {type: Value, value: 5}}
"""
DECIDE: Final = json.dumps(
    {
        "rule": GOOD_RULE,
        "now": 1700000000.0,
        "scale": {"specReplicas": 2, "statusReplicas": 2},
        "pods": [{"name": "a"}, {"name": "b"}],
        "metrics": [{"name": "rps", "podValues": {"a": 25.0, "b": 15.0}}],
    }
).encode()
HPA: Final = b"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {name: queue}
        target: {type: Value, value: "500m"}
"""


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


CORPUS: Final[dict[str, bytes]] = {
    # Well-formed documents: the harness must also accept the good answers.
    "good-json-rule": GOOD_JSON,
    "good-yaml-rule": GOOD_YAML,
    "good-decide": DECIDE,
    "good-hpa": HPA,
    # Alias and anchor bombs.
    "billion-laughs-9": _alias_bomb(9),
    "billion-laughs-in-query": _alias_bomb(9, indent=True),
    "quadratic-blowup": b"a: &a " + b"x" * 4000 + b"\nb: [" + b",".join([b"*a"] * 1000) + b"]\n",
    "merge-key-bomb": b"base: &b {a: 1}\nx: {<<: *b, a: 2}\n",
    "alias-to-self": b"a: &a [*a]\n",
    "undefined-alias": b"maxReplicas: *nowhere\n",
    # Deep nesting, in every syntax.
    "deep-json-array": b"[" * 200_000 + b"]" * 200_000,
    "deep-json-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deep-json-unclosed": b"[" * 200_000,
    "deep-yaml-flow": b"a: " + b"[" * 200_000 + b"]" * 200_000,
    "deep-yaml-flow-map": b"a: " + b"{a: " * 20_000 + b"1" + b"}" * 20_000,
    "deep-yaml-block": b"".join(b"  " * i + b"- \n" for i in range(2000)),
    "deep-rule-metrics": _replace(
        GOOD_JSON, b'"averageValue": 10', b'"averageValue": ' + b"[" * 5000 + b"]" * 5000
    ),
    # Numbers.
    "int-400-digits-json": _replace(GOOD_JSON, b'"maxReplicas": 10', b'"maxReplicas": ' + b"9" * 400),
    "int-5000-digits-json": _replace(GOOD_JSON, b'"maxReplicas": 10', b'"maxReplicas": ' + b"9" * 5000),
    "int-5000-digits-yaml": _replace(GOOD_YAML, b"maxReplicas: 10", b"maxReplicas: " + b"9" * 5000),
    "int-underscores-yaml": _replace(GOOD_YAML, b"maxReplicas: 10", b"maxReplicas: " + b"9_" * 3000 + b"9"),
    "int-sexagesimal-yaml": _replace(GOOD_YAML, b"maxReplicas: 10", b"maxReplicas: " + b"59:" * 3000 + b"1"),
    "int-2-64": _replace(GOOD_JSON, b'"maxReplicas": 10', b'"maxReplicas": 18446744073709551616'),
    "float-1e400": _replace(GOOD_JSON, b'"averageValue": 10', b'"averageValue": 1e400'),
    "float-tiny-target": _replace(GOOD_JSON, b'"averageValue": 10', b'"averageValue": 5e-10'),
    "float-denormal": _replace(GOOD_JSON, b'"averageValue": 10', b'"averageValue": 5e-324'),
    "float-huge-target": _replace(GOOD_JSON, b'"averageValue": 10', b'"averageValue": 1.7e308'),
    "nan-json": _replace(GOOD_JSON, b'"averageValue": 10', b'"averageValue": NaN'),
    "nan-yaml": _replace(GOOD_YAML, b"value: 5", b"value: .nan"),
    "inf-yaml": _replace(GOOD_YAML, b"value: 5", b"value: -.inf"),
    "decide-huge-observation": _replace(DECIDE, b'"a": 25.0', b'"a": 1.7e308'),
    "decide-huge-int-observation": _replace(DECIDE, b'"a": 25.0', b'"a": ' + b"9" * 330),
    "decide-huge-replicas": _replace(DECIDE, b'"specReplicas": 2', b'"specReplicas": 99999999999999'),
    "decide-huge-now": _replace(DECIDE, b'"now": 1700000000.0', b'"now": 1e308'),
    "hpa-huge-quantity": _replace(HPA, b'value: "500m"', b'value: "9' + b"9" * 400 + b'E"'),
    "hpa-huge-max": _replace(HPA, b"maxReplicas: 10", b"maxReplicas: " + b"9" * 30),
    # Encodings.
    "utf8-bom-json": b"\xef\xbb\xbf" + GOOD_JSON,
    "utf8-bom-yaml": b"\xef\xbb\xbf" + GOOD_YAML,
    "double-bom": b"\xef\xbb\xbf\xef\xbb\xbf" + GOOD_JSON,
    "utf16-le-bom": b"\xff\xfe" + GOOD_JSON.decode().encode("utf-16-le"),
    "utf16-be": GOOD_JSON.decode().encode("utf-16-be"),
    "latin1": _replace(GOOD_YAML, b"team/web", "équipe".encode("latin-1")),
    "truncated-utf8": GOOD_JSON + b"\xe2\x82",
    "overlong-utf8": _replace(GOOD_JSON, b'"web"', b'"\xc0\xaf"'),
    "cesu-surrogate": _replace(GOOD_JSON, b'"web"', b'"\xed\xa0\x80"'),
    "escaped-lone-surrogate-json": _replace(GOOD_JSON, b'"web"', b'"\\ud800"'),
    "escaped-lone-surrogate-key": _replace(GOOD_JSON, b'"minReplicas"', b'"\\udc00"'),
    "escaped-lone-surrogate-yaml": _replace(GOOD_YAML, b"team/web", b'"\\ud800"'),
    "escaped-pair-ok": _replace(GOOD_JSON, b'"web"', b'"\\ud83d\\ude00"'),
    # Keys.
    "duplicate-json": _replace(GOOD_JSON, b'"maxReplicas": 10', b'"maxReplicas": 5, "maxReplicas": 500'),
    "duplicate-yaml": _replace(GOOD_YAML, b"maxReplicas: 10", b"maxReplicas: 5\nmaxReplicas: 500"),
    "duplicate-nested-yaml": _replace(
        GOOD_YAML, b"{type: Value, value: 5}", b"{type: Value, value: 5, value: 6}"
    ),
    "duplicate-decide": _replace(DECIDE, b'"now": 1700000000.0', b'"now": 1, "now": 2'),
    "duplicate-hpa": _replace(HPA, b"maxReplicas: 10", b"maxReplicas: 10\n  maxReplicas: 20"),
    "non-string-keys": b"1: a\ntrue: b\nnull: c\n[1]: d\n",
    "unhashable-key": b"? {a: 1}\n: x\n",
    # Names.
    "name-trailing-newline": _replace(GOOD_JSON, b'"name": "web"', b'"name": "web\\n"'),
    "namespace-trailing-newline": _replace(GOOD_YAML, b"namespace: shop", b'namespace: "shop\\n"'),
    "system-namespace": _replace(GOOD_YAML, b"namespace: shop", b"namespace: kube-system"),
    # Shapes and tags.
    "empty": b"",
    "whitespace": b" \n\t\n",
    "null": b"null",
    "scalar": b"42",
    "list": b"[1, 2, 3]",
    "several-documents": GOOD_YAML + b"---\n" + GOOD_YAML,
    "python-tag": b"!!python/object/apply:os.system ['true']\n",
    "binary-tag": b"a: !!binary aGVsbG8=\n",
    "set-tag": b"a: !!set {x, y}\n",
    "timestamp": b"maxReplicas: 2001-12-14t21:59:43.10-05:00\n",
    "bad-timestamp": b"a: 2001-13-45\n",
    "custom-tag": b"a: !Ref x\n",
    "long-string": b'{"name": "' + b"a" * 7000 + b'"}',
    "many-keys": b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(1200)) + b"}",
    "control-characters": b"apiVersion: \x01\x02\x03\n",
    "nul-bytes": b"\x00" * 100,
    "binary": bytes(range(256)) * 8,
    "random-ish": bytes((i * 7919) % 256 for i in range(4096)),
    "over-8k-rule": _replace(GOOD_JSON, b'"web"', b'"' + b"w" * 9000 + b'"'),
    "windows-newlines": GOOD_YAML.replace(b"\n", b"\r\n"),
    "tabs-in-yaml": GOOD_YAML.replace(b"  - ", b"\t- "),
}
