# Two commands: `make run` (the whole chat server) and `make test` (lint + every test).
# Both create .venv and install the pinned requirements on first use.

# python3.11 where installed under that name, else python3 (which must then be 3.11).
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format install bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "error: Python 3.11 is required ($(PYTHON) is not it)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack run

# Debian's Chromium for the browser tests, once (a stamp): installed with apt-get where make runs
# as root and apt-get exists; otherwise the browser tests skip and say why. `rm $(CHROMIUM_STAMP)`
# to try again.
CHROMIUM := /usr/bin/chromium
CHROMIUM_STAMP := $(VENV)/.chromium

$(CHROMIUM_STAMP):
	@if [ -x $(CHROMIUM) ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: $(CHROMIUM) is missing and there is no apt-get to install it: the browser tests will skip"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "note: $(CHROMIUM) is missing and make is not root: the browser tests will skip (sudo apt-get install chromium)"; \
	else \
		echo "installing Debian's chromium for the browser tests (apt-get, once)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
			&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
			|| echo "note: apt-get install chromium failed: the browser tests will skip (rm $@ to try again)"; \
	fi
	@mkdir -p $(@D) && touch $@

# The test files are spread over TEST_WORKERS processes (pytest-xdist), each on embedded services
# of its own (tests/worker_stack.py); most tests wait on sockets, so more workers than cores pay.
# TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 4

# The embedded broker (Tansu 0.6, memory storage) has, in a few full runs, stopped answering
# one worker for a while or answered "unknown topic" for a topic it holds, failing that worker's
# Kafka tests; production runs Apache Kafka. So the tests that failed run once more, on services
# started afresh, and the run says which: a test that fails there too fails `make test`, and one
# that passed only then is named in the output (and its worker's broker stalls, tests/broker_watch.py).
test: $(STAMP) $(CHROMIUM_STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache
	rm -f .pytest_cache/v/cache/lastfailed
	$(PY) -m devstack exec -- $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS) || { \
		echo "== make test: running the tests that failed once more, on fresh services (see the Makefile)"; \
		$(PY) -m devstack exec -- $(PY) -m pytest --last-failed --last-failed-no-failures none -n $(TEST_WORKERS) --dist loadfile $(ARGS); }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

# The fault table of docs/reliability.md: chat under load while a part of `make run` fails (bench/faults.py).
.PHONY: faults
faults: $(STAMP)
	$(PY) -m bench.faults $(ARGS)

clean:
	rm -rf .devstack
