# FinePay: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
INSTALLED := $(VENV)/.installed

.PHONY: run test lint browser clean bench

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Set up, migrate, load demo data and serve on http://127.0.0.1:8000 (SQLite, sandbox gateway).
run: $(INSTALLED)
	$(FLASK) db upgrade
	$(FLASK) demo seed
	@echo
	@echo "  FinePay is starting on http://127.0.0.1:8000  (Ctrl-C to stop)"
	@echo
	PAYMENT_GATEWAY=sandbox $(BIN)/gunicorn --bind 127.0.0.1:8000 --workers 2 --access-logfile - wsgi:app

## Chromium for the browser tests, from Debian's packages (Playwright cannot download browsers here),
## with a CJK font so that screenshots show plates instead of empty boxes.
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  echo "Installing $(BROWSER_PACKAGES) for the browser tests..."; \
	  apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES); } \
	  || echo "WARNING: could not install $(BROWSER_PACKAGES); browser tests will be skipped (REQUIRE_BROWSER=1 fails instead)"; \
	fi

lint: $(INSTALLED)
	$(BIN)/ruff check .

## Set up and run the whole suite: lint, unit, API (SQLite and PostgreSQL), browser.
test: $(INSTALLED) browser lint
	$(BIN)/pytest $(PYTEST_ARGS)

## Speed and memory figures into docs/benchmarks.md (PostgreSQL + wrk; BENCH_VIOLATIONS=100000 for a quick run).
bench: $(INSTALLED)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) instance .pytest_cache tests/artifacts
