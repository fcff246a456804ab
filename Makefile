# PetroStream: `make run` starts the portal on the local backend with demo data,
# `make test` runs the whole test suite. Both set up everything they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-installed
export PETROSTREAM_HOME ?= $(CURDIR)/.petrostream

# Extra prerequisites of `make test`; infra.mk adds its linters' installs.
TEST_PREREQS := deps system-deps
-include infra.mk

.PHONY: run test deps system-deps kernels lint bench clean constraints

# constraints.txt pins what the requirements pull in, so a fresh machine installs what CI tested.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $@

deps: $(STAMP)

system-deps:
	bash scripts/install_system_deps.sh

# The engine's C kernels (engine/native.py), built now rather than on first use; a compiler is
# installed first when there is none.
kernels: deps
	command -v $${CC:-cc} >/dev/null 2>&1 || bash scripts/install_system_deps.sh gcc libc6-dev
	$(BIN)/python -m engine.native

test: $(TEST_PREREQS)
	$(BIN)/python -m pytest

lint: deps
	$(BIN)/ruff check .
	$(BIN)/bandit -q -r engine ml control_center pages deploy bench -ll

# The portal has no login of its own: it listens on this machine only unless PORTAL_ADDRESS says
# otherwise (README, "The portal": how to open it to a network deliberately).
PORTAL_PORT ?= 8501
PORTAL_ADDRESS ?= 127.0.0.1
run: deps kernels
	PETROSTREAM_BACKEND=local $(BIN)/python -m control_center.bootstrap
	@echo "PetroStream portal: http://$(PORTAL_ADDRESS):$(PORTAL_PORT)  (Ctrl-C stops the portal, not replays or consumers)"
	PETROSTREAM_BACKEND=local $(BIN)/python -m streamlit run control_center/app.py \
		--server.address $(PORTAL_ADDRESS) --server.port $(PORTAL_PORT)

bench: deps
	$(BIN)/python bench/bench_pipeline.py

# Re-pin constraints.txt to what the requirements resolve to today, in a throwaway virtualenv.
PIN_VENV := .venv-constraints
constraints:
	rm -rf $(PIN_VENV)
	$(PYTHON) -m venv $(PIN_VENV)
	$(PIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PIN_VENV)/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PIN_VENV)/bin/python scripts/write_constraints.py > constraints.txt
	rm -rf $(PIN_VENV)

clean:
	rm -rf $(VENV) .petrostream .pytest_cache
