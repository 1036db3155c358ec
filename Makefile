# ampscaler developer entry points. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
# sam build without Docker needs python3.13 on PATH; pyenv finds it when asked for all three.
export PYENV_VERSION := 3.11.7:3.12.1:3.13.0
VENV ?= .venv
# make install puts a shim here; ~/.local/bin is on PATH in Debian/Ubuntu login shells.
PREFIX ?= $(HOME)/.local
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The demo needs less than the tests; a venv installed for the tests serves the demo as well.
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: help venv deps test lint typecheck unit demo bench clean install sandbox

help:
	@echo "make demo   - run ampscaler locally on embedded defaults (Prometheus, moto, cluster simulator)"
	@echo "make test   - lint, type-check and run every test"
	@echo "make bench  - run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make install - put the ampscaler CLI on PATH (a shim in $(PREFIX)/bin)"
	@echo "make sandbox - leave the local stack up with live traffic and the scaler; prints the CLI's exports"

$(STAMP): pyproject.toml layers/ampscaler/requirements.txt scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) dev
	@touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml layers/ampscaler/requirements.txt scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV) demo
	@touch $(DEMO_STAMP)

venv deps: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy layers/ampscaler/ampscaler functions devstack tests bench

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

demo: $(DEMO_STAMP)
	$(PY) -m devstack.demo $(if $(SCENARIO),--scenario $(SCENARIO))

# The shim runs this clone's venv, so the CLI works from any directory without activating it.
install: $(DEMO_STAMP)
	@mkdir -p "$(PREFIX)/bin"
	@printf '#!/bin/sh\nexec "%s" "$$@"\n' "$(abspath $(VENV))/bin/ampscaler" > "$(PREFIX)/bin/ampscaler"
	@chmod 755 "$(PREFIX)/bin/ampscaler"
	@echo "installed $(PREFIX)/bin/ampscaler -> $(abspath $(VENV))/bin/ampscaler"
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; \
	  *) echo "note: $(PREFIX)/bin is not on PATH; add it (export PATH=\"$(PREFIX)/bin:\$$PATH\") or run: source $(VENV)/bin/activate";; esac

sandbox: $(DEMO_STAMP)
	$(PY) -m devstack.sandbox

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache demo-output
