"""Suite-wide fixtures: the real local components come from the plugins in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.prometheus",
    "tests.fixtures.aws",
    "tests.fixtures.kube",
    "tests.fixtures.litter",
]
