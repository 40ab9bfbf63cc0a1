# Set-up and entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: install test-install run demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	# argostranslate's own dependencies pull stanza and torch; Dozor only needs its
	# package manager and metadata, and runs the models through CTranslate2 itself.
	$(PIP) install --no-deps argostranslate==1.11.0
	touch $@

# The tests also run argostranslate's own translate() as the reference for the batched
# path, which needs stanza and therefore torch: the CPU build goes first.
test-install: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test]' stanza==1.10.1
	# tests/test_compose.py validates docker-compose.yml with Debian's docker-compose,
	# which needs no Docker engine; installed here when missing and we are root (CI)
	@command -v docker-compose >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } \
		|| echo "docker-compose not installed: tests/test_compose.py will be skipped"
	# tests/test_distributed.py runs Debian's redis-server (the workers' shared frontier)
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
		|| echo "redis-server not installed: tests/test_distributed.py will be skipped"
	# tests/test_ui_browser.py renders the analyst UI in Debian's headless Chromium
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: tests/test_ui_browser.py will be skipped"
	# tests/test_es_spec.py type-checks the Elasticsearch traffic with TypeScript from npm
	# (pinned in tests/tsc/package-lock.json)
	@command -v npm >/dev/null && npm ci --prefix tests/tsc --no-audit --no-fund --silent \
		|| echo "npm not installed: tests/test_es_spec.py will be skipped"
	touch $@

run: install
	$(VENV)/bin/dozor run

demo: install
	$(VENV)/bin/dozor demo

# the layers contract (pyproject.toml, tool.importlinter) fails the build before any test
test: test-install
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest

lint: test-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache
