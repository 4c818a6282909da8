# The verbs people type. Needs only Python >= 3.11 and make: the first target that
# needs the environment creates it (uv in .uv/, the workspace in .venv/).
PYTHON ?= python3
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
SOURCES := shared-contracts libs infra services tests conftest.py
# Every service's src/ (the three and any made from the template), for mypy: its
# mypy_path setting takes no globs.
empty :=
space := $(empty) $(empty)
export MYPYPATH := $(subst $(space),:,$(wildcard $(CURDIR)/services/*/src))

.DEFAULT_GOAL := help
.PHONY: help install up demo invariants test test-unit test-integration test-e2e chaos lint fmt typecheck contracts clean service-check

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python >= 3.11 is required ($(PYTHON) is older); set PYTHON=..."; exit 1; }
	@echo "creating .uv (the uv package manager)"
	@$(PYTHON) -m venv .uv || { echo "error: '$(PYTHON) -m venv' failed; install the venv module (e.g. apt-get install python3-venv)"; exit 1; }
	@.uv/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set, as on CI machines, every
# Python process would otherwise compile SQLAlchemy, FastAPI and the rest from source
# again, about 1.5 s of CPU each, and the tests start hundreds of them.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml libs/*/pyproject.toml infra/*/pyproject.toml services/*/pyproject.toml
	@echo "installing the workspace into .venv"
	@$(UV) sync --frozen --all-packages --python $(PYTHON) --quiet --compile-bytecode
	@touch $@

install: $(VENV)/.synced ## create .venv with every package and dev tool

up: install ## run the whole system locally in the foreground (Ctrl-C stops it)
	@$(BIN)/python -m devstack up

demo: install ## fresh stack, workshop scenarios, report, stop
	@$(BIN)/python -m devstack demo

# Most tests spend their time waiting on the processes they start (PostgreSQL, the
# broker, the services), so two run at a time (pytest-xdist) to keep both cores busy:
# 14 min 40 s of pytest became 9 min 54 s on 2 cores. Every test takes free ports and
# its own directories, so they cannot collide. `make chaos` stays serial: its
# scenarios measure recovery under load and share one summary table.
# The tests that share a whole stack run together on one worker, so that it starts
# once (tests/conftest.py).
TEST_WORKERS ?= 2

test: install $(if $(SERVICE),service-check,lint typecheck contracts-check chromium) ## everything CI runs: lint, types, contracts gate, unit, integration, end-to-end, browser; SERVICE=<name>: that service's lint, types and tests alone
	$(BIN)/pytest -n $(TEST_WORKERS) $(if $(SERVICE),services/$(SERVICE))

service-check: install
	@test -f services/$(SERVICE)/pyproject.toml || { echo "error: no service services/$(SERVICE)/ (SERVICE=$(SERVICE))"; exit 1; }
	$(BIN)/ruff check services/$(SERVICE)
	$(BIN)/ruff format --check services/$(SERVICE)
	$(BIN)/mypy services/$(SERVICE)

# The browser tests (tests/workshop) drive Debian's Chromium; Playwright never downloads
# a browser of its own. This installs it when it is missing and can be (root, apt-get),
# and never fails: without Chromium those tests skip and say why.
CHROMIUM := /usr/bin/chromium
.PHONY: chromium
chromium: ## install Debian's chromium for the browser tests if missing (as root with apt-get; never fails)
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "chromium: $(CHROMIUM) is missing and this is not root: the browser tests will skip (apt-get install chromium chromium-driver)"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then echo "chromium: $(CHROMIUM) is missing and there is no apt-get: the browser tests will skip"; exit 0; fi; \
	echo "chromium: installing Debian's chromium and chromium-driver for the browser tests"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
		|| echo "chromium: apt-get could not install it: the browser tests will skip"; \
	test -x $(CHROMIUM) && echo "chromium: installed ($(CHROMIUM))" || true

test-unit: install ## fast tests without I/O
	$(BIN)/pytest -m "not integration and not e2e and not chaos"

test-integration: install ## per-package tests against real PostgreSQL and the broker
	$(BIN)/pytest -n $(TEST_WORKERS) -m integration

test-e2e: install ## the three services as processes, over HTTP
	$(BIN)/pytest -n $(TEST_WORKERS) -m e2e

chaos: install ## fault injection under load (~8 min): summary table, writes docs/reliability.md
	$(BIN)/pytest -m chaos tests/failure

.PHONY: bench
bench: install ## saga throughput and latency on a fresh stack, flat out and at 200/s (~9 min): bench/results/
	$(BIN)/python tests/bench/run.py $(BENCH_ARGS)

.PHONY: compare
compare: install ## the saga against a synchronous distributed monolith, same load and faults (~5 min): table, bench/results/compare.*, docs/comparison.md
	$(BIN)/python -m compare $(COMPARE_ARGS)

.PHONY: soak
soak: install ## steady load for 10 min (SOAK_SECONDS=600): flat memory, drained outbox; writes docs/reliability.md
	$(BIN)/pytest -m soak -s tests/failure

lint: install ## ruff lint and format check
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

fmt: install ## format and auto-fix
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

typecheck: install ## mypy --strict
	$(BIN)/mypy $(SOURCES)

.PHONY: dlq-list dlq-replay
dlq-list: install ## list a dead-letter topic and why: make dlq-list TOPIC=orders.events
	@test -n "$(TOPIC)" || { echo "error: set TOPIC, e.g. make dlq-list TOPIC=orders.events"; exit 1; }
	@$(BIN)/python -m devstack dlq list $(TOPIC)

dlq-replay: install ## re-publish a DLQ's new records: make dlq-replay TOPIC=orders.events [CONSUMER=payment]
	@test -n "$(TOPIC)" || { echo "error: set TOPIC, e.g. make dlq-replay TOPIC=orders.events"; exit 1; }
	@$(BIN)/python -m devstack dlq replay $(TOPIC) $(if $(CONSUMER),--consumer $(CONSUMER))

contracts: install ## regenerate the event schemas, asyncapi.yaml and each service's openapi.json from the code
	$(BIN)/python shared-contracts/generate_schemas.py
	@for dir in services/*/; do \
		svc=$$(basename $$dir); \
		$(BIN)/python -m chassis.openapi $$svc services/$$svc/openapi.json || exit 1; \
	done

.PHONY: contracts-check contracts-release
contracts-check: install ## fail on an event-schema or HTTP API change that breaks a consumer of the last release
	$(BIN)/python shared-contracts/check_compat.py
	$(BIN)/python shared-contracts/check_openapi.py

contracts-release: contracts ## make the current event schemas and OpenAPI documents the released set (refuses a breaking change); SERVICE=payment: that service's API only
ifeq ($(SERVICE),)
	$(BIN)/python shared-contracts/check_compat.py release
	$(BIN)/python shared-contracts/check_openapi.py release
else
	$(BIN)/python shared-contracts/check_openapi.py release --service $(SERVICE)
endif

.PHONY: scenario
scenario: install ## run a workshop scenario on the stack of `make up`: make scenario NAME=place-order (no NAME lists them)
	@$(BIN)/python -m devstack scenario $(NAME)

invariants: install ## check a running stack (make up) over HTTP; exit 1 on any violation
	@$(BIN)/python -m devstack invariants --settle $(or $(SETTLE),0)

.PHONY: new-service update-service
new-service: install ## stamp services/NAME from the template: make new-service NAME=shipping [TOPIC=orders.events]
	@test -n "$(NAME)" || { echo "error: set NAME, e.g. make new-service NAME=shipping"; exit 1; }
	@$(BIN)/python -m devstack.scaffold $(NAME) $(if $(TOPIC),--topic $(TOPIC))
	@$(MAKE) --no-print-directory install

update-service: install ## take the template's later changes into services/NAME (copier update): make update-service NAME=shipping
	@test -n "$(NAME)" || { echo "error: set NAME, e.g. make update-service NAME=shipping"; exit 1; }
	@$(BIN)/python -m devstack.scaffold --update $(NAME)

clean: ## remove the local stack's data (.stack/)
	rm -rf .stack
