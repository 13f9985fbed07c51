# The two everyday commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check bench install install-dev prod-walk

# Stamps make a second `make run` fast: dependencies reinstall only when their lock changes.
$(VENV)/.runtime-installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.txt $(VENV)/.runtime-installed
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.runtime-installed node_modules/.installed
install-dev: $(VENV)/.dev-installed node_modules/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo ""
	@echo "  Actions console: http://$(HOST):$(PORT)/"
	@echo "  Sign in as alice (acme owner), eddie (acme editor), victor (acme viewer)"
	@echo "  or gina (globex owner); the password for all of them is demo-pass-123."
	@echo ""
	OUTBOX_IN_PROCESS=1 $(PY) manage.py runserver $(HOST):$(PORT)

test: install-dev
	./tests/ensure_chromium.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# Production as the README deploys it (collectstatic, gunicorn + WhiteNoise, PostgreSQL, Redis),
# every page and the code editor in chromium; needs the local PostgreSQL and Redis. CI runs it.
prod-walk: install-dev
	./tests/ensure_chromium.sh
	$(PY) -m tests.production.walk

check: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache

bench: install-dev
	$(PY) bench/run_all.py
