# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOTLINE := $(BIN)/hotline
SUM := $(shell cat setup.cfg pyproject.toml setup.py | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(SUM)
# what running needs (no test or benchmark tools): `make run` on a fresh machine
RUN_STAMP := $(VENV)/.installed-run-$(SUM)

.PHONY: run test test-fast test-shifted venv migrate lint typecheck bench clean test-deps

$(STAMP): setup.cfg pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@ $(RUN_STAMP)

$(RUN_STAMP): setup.cfg pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

venv: $(STAMP)

run: $(RUN_STAMP)
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

# Two pytest workers (pytest-xdist), a file's tests on one worker: most of the suite
# waits on real time (Asterisk calls, a browser), so two cores run it in about half the
# wall time. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) test-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The inner loop: no browser, no Asterisk (tests/conftest.py marks the tests that start
# one `pbx`). `make test` stays the full suite CI runs.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not browser and not pbx" $(PYTEST_ARGS)

# The suite at any hour: the time-sensitive tests with the clock shifted (Debian's
# faketime, LD_PRELOAD: the embedded PostgreSQL started by the tests runs shifted too)
# to a Saturday 02:30 and 23:50 Asia/Shanghai (18:30 and 15:50 UTC). The clock advances
# from there (monotonic time is shifted too: libfaketime 0.9.10 fails time.sleep with
# EINVAL when only the wall clock is). SHIFTED_AT and
# SHIFTED_TESTS choose other moments and tests.
SHIFTED_AT ?= 2026-11-27T18:30:00 2026-11-28T15:50:00
SHIFTED_TESTS ?= tests/tickets tests/sla tests/calendar tests/reports tests/numbering tests/notify tests/assessment \
	tests/console tests/agi/test_agi_rules.py tests/agi/test_agi_modes.py
test-shifted: $(STAMP) test-deps
	@command -v faketime >/dev/null || { echo "test-shifted needs faketime (apt-get install faketime)"; exit 1; }
	@for at in $(SHIFTED_AT); do \
	  echo "== clock shifted to $$at UTC"; \
	  TZ=UTC faketime -f "@$$(echo $$at | tr T ' ')" \
	    $(BIN)/python -m pytest -q -p no:cacheprovider $(SHIFTED_TESTS) $(PYTEST_ARGS) || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check hotline agi_scripts tests bench
	$(BIN)/mypy hotline
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	@for f in bench/*_bench.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
