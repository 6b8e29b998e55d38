# FinePay: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
INSTALLED := $(VENV)/.installed

.PHONY: run test lint browser services clean bench i18n i18n-check translations
# A recipe that fails leaves no half-made file behind (pybabel compile writes the .mo even when it fails).
.DELETE_ON_ERROR:

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Compiled catalogues (.mo) are built, not committed: every target that serves pages depends on them.
LOCALES := zh_Hans_CN en
PYBABEL := $(BIN)/pybabel
CATALOGS := $(foreach l,$(LOCALES),translations/$(l)/LC_MESSAGES/messages.po)
MO_FILES := $(CATALOGS:.po=.mo)
translations: $(MO_FILES)
translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(INSTALLED)
	$(PYBABEL) -q compile -d translations -l $*

## After changing user-visible text: extract every message, update both catalogues (English filled
## from the source), compile. Then translate the new empty msgstr in translations/zh_Hans_CN and run it again.
i18n: $(INSTALLED)
	$(PYBABEL) -q extract -F babel.cfg -k _l -k N_ --no-location --sort-output -o translations/messages.pot .
	@for l in $(LOCALES); do \
	  if [ -f translations/$$l/LC_MESSAGES/messages.po ]; then \
	    $(PYBABEL) -q update -i translations/messages.pot -d translations -l $$l --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date -w 100; \
	  else $(PYBABEL) -q init -i translations/messages.pot -d translations -l $$l -w 100; fi; \
	done
	$(BIN)/python scripts/i18n_check.py --fill-source en
	$(PYBABEL) compile -d translations --statistics

## Fails on an untranslated or fuzzy message, a catalogue out of date with the source, or a compile error.
i18n-check: $(INSTALLED)
	$(BIN)/python scripts/i18n_check.py

## Set up, migrate, load demo data and serve on http://127.0.0.1:8000 (SQLite), offering PAYMENT_GATEWAYS
## (default wechatpay,alipay,sandbox) with the rails' local simulators beside it on 127.0.0.1:8101 and up,
## all stopped by Ctrl-C (scripts/run_demo.py). PAYMENT_GATEWAYS=sandbox make run: the card sandbox alone.
run: $(INSTALLED) $(MO_FILES)
	$(BIN)/python scripts/run_demo.py

## Chromium for the browser tests, from Debian's packages (Playwright cannot download browsers here),
## with a CJK font so that screenshots show plates instead of empty boxes, and axe-core from npm.
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  echo "Installing $(BROWSER_PACKAGES) for the browser tests..."; \
	  apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES); } \
	  || echo "WARNING: could not install $(BROWSER_PACKAGES); browser tests will be skipped (REQUIRE_BROWSER=1 fails instead)"; \
	fi
	@# axe-core and jsQR (npm, pinned in tests/browser/package-lock.json): the accessibility tests, and reading
	@# the rails' QR codes from their pixels as a phone would.
	@if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ] || [ ! -d tests/browser/node_modules/jsqr ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    echo "Installing axe-core and jsQR for the browser tests..."; \
	    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) \
	    || echo "WARNING: npm ci failed; accessibility tests will be skipped (REQUIRE_BROWSER=1 fails instead)"; \
	  else \
	    echo "WARNING: npm not found; accessibility tests will be skipped (REQUIRE_BROWSER=1 fails instead)"; \
	  fi; \
	fi

## nginx (and openssl, for the test certificate) for the two-node test behind a load balancer
## (tests/reliability/test_two_nodes.py), from Debian's packages. The test runs its own nginx as a child
## process with a generated config; the package's system service (if the machine starts one) is not used.
## redis-server too: the Redis tests use the machine's Redis on 6379, or start a private redis-server.
SERVICE_PACKAGES := nginx openssl redis-server
services:
	@if ! PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 \
	  || ! command -v redis-server >/dev/null 2>&1; then \
	  echo "Installing $(SERVICE_PACKAGES) for the two-node and Redis tests..."; \
	  apt-get install -y -qq $(SERVICE_PACKAGES) >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq $(SERVICE_PACKAGES); } \
	  || echo "WARNING: could not install $(SERVICE_PACKAGES); the two-node and Redis tests will be skipped (REQUIRE_NGINX=1 / REQUIRE_REDIS=1 fail instead)"; \
	fi

## Style (ruff) and the layering (.importlinter: the base imports no area, no import cycles,
## gateway adapters reached only through their registry).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## Set up and run the whole suite: lint, catalogues, unit, API (SQLite and PostgreSQL), browser, two nodes behind nginx.
test: $(INSTALLED) browser services lint i18n-check $(MO_FILES)
	$(BIN)/pytest $(PYTEST_ARGS)

## Speed and memory figures into docs/benchmarks.md (PostgreSQL + wrk; BENCH_VIOLATIONS=100000 for a quick run).
bench: $(INSTALLED) $(MO_FILES)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }
	@test -x $(BIN)/py-spy || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) instance .pytest_cache tests/artifacts
