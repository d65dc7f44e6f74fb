# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOTLINE := $(BIN)/hotline
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test venv migrate lint typecheck bench clean test-deps

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(HOTLINE) migrate
	$(HOTLINE) hotlines sync
	$(HOTLINE) kb import knowledge_base/
	$(HOTLINE) serve --demo

migrate: $(STAMP)
	$(HOTLINE) migrate
	$(HOTLINE) hotlines sync
	$(HOTLINE) kb import knowledge_base/

# System packages the browser tests need (Debian's chromium); a no-op when present.
test-deps:
	@bash .ci/test-deps.sh

test: $(STAMP) test-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check hotline agi_scripts tests bench
	$(BIN)/mypy hotline

bench: $(STAMP)
	@for f in bench/*_bench.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
