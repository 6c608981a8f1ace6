# The front door: `make help` lists every target.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config

.DEFAULT_GOAL := help
.PHONY: help run status test browser-deps bqemulator php-deps postgres readme-check lint typecheck check bench golden clean chaos chaos-deps

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || PY=python3; $${PY:-$(PY)} -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) ## set up .venv and serve the example config (embedded SQLite outbox)
	@mkdir -p var
	TAGLESS_ADMIN_TOKEN=$${TAGLESS_ADMIN_TOKEN:-change-me-admin-token} $(BIN)/tagless serve --config $(CONFIG)

status: $(STAMP) ## pending / retrying / dead counts per destination of the example config
	TAGLESS_ADMIN_TOKEN=$${TAGLESS_ADMIN_TOKEN:-change-me-admin-token} $(BIN)/tagless status --config $(CONFIG)

test: $(STAMP) browser-deps bqemulator php-deps postgres chaos-deps ## set up .venv and run the whole test suite
	TAGLESS_REQUIRE_POSTGRES=1 $(BIN)/pytest -q

browser-deps: ## Chromium (Debian) and analytics.js (npm) for the browser tests
	@bash scripts/browser-deps.sh

php-deps: ## PHP, PHPUnit, WordPress and MariaDB (Debian) for the WooCommerce plugin's tests
	@bash scripts/php-deps.sh

postgres: ## PostgreSQL on 127.0.0.1:5432 for the outbox tests (Debian's package if none answers)
	@bash scripts/postgres.sh

bqemulator: ## a local BigQuery for the tests, in .cache/bqemulator-venv (not a Tagless dependency)
	@bash scripts/bqemulator.sh

lint: $(STAMP) ## ruff over the code and tests
	$(BIN)/ruff check router destinations tests bench scripts
	$(BIN)/ruff format --check router destinations tests bench scripts

typecheck: $(STAMP) ## mypy --strict on router/ and destinations/
	$(BIN)/mypy

check: $(STAMP) ## validate the example config and every config/examples/*.yaml (stores and fragments)
	TAGLESS_ADMIN_TOKEN=$${TAGLESS_ADMIN_TOKEN:-check-token} $(BIN)/tagless check --config $(CONFIG)
	$(BIN)/python -m router.config.examples config/examples/*.yaml

readme-check: ## follow the README's commands on a fresh clone of HEAD (CI runs it)
	python3 scripts/readme_walkthrough.py

chaos: $(STAMP) chaos-deps postgres ## the fault suite at full length (kills, outages, disk full...): prints every scenario's figures
	TAGLESS_REQUIRE_POSTGRES=1 TAGLESS_CHAOS=full TAGLESS_FUZZ_EXAMPLES=$${TAGLESS_FUZZ_EXAMPLES:-3000} $(BIN)/pytest -q -s -p no:randomly tests/chaos tests/ingest/test_fuzz_ingest.py

chaos-deps: ## libfaketime (Debian) for the fault suite's accelerated and jumped clocks
	@bash scripts/chaos-deps.sh

bench: $(STAMP) ## Tagless delivering to 5 platforms against a bare baseline; writes docs/performance.md
	$(BIN)/python bench/run.py

golden: $(STAMP) ## regenerate golden mapping files (review the diff)
	TAGLESS_REGEN_GOLDEN=1 $(BIN)/pytest -q tests -k golden

clean: ## remove .venv and var/
	rm -rf $(VENV) var .cache tests/browser/node_modules .pytest_cache .mypy_cache .ruff_cache
