# The verbs a newcomer types. Every target that needs the project's Python depends on `setup`,
# so on a fresh machine `make plan` or `make test` is the only command to run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= example
STAMP  := $(VENV)/.installed

.PHONY: setup plan validate test lint bench up down clean

setup: $(STAMP)

# Re-installs only when pyproject.toml changes; a fresh clone creates the venv first.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
		| grep -v "is ignored: it is neither a file nor a directory" || true
	@$(BIN)/python -c "import azcluster.components" 
	@touch $@

plan: setup          ## Plan the example cluster offline (no Azure, no Pulumi CLI needed)
	$(BIN)/azcluster plan $(STACK)

validate: setup
	$(BIN)/azcluster validate $(STACK)

# In parallel: two workers per CPU, each test module a group, the real-daemon suites one group started
# first (tests/groups.py). The daemon suites mostly wait (boots, SuspendTime, scrapes): with one worker per
# CPU a 2-core machine sat three-quarters idle for 14 minutes; with two, the same tests took 7.7 minutes.
# TEST_WORKERS=0 runs everything in this process; TESTS picks files or options,
# e.g. `make test TESTS="tests/components -k slurm"`.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(2 * (os.cpu_count() or 1))")
TESTS ?=
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(TESTS)

# ruff, then the layering contracts in pyproject.toml [tool.importlinter] (no circles; components never
# import the CLI side; ops readers never import views). CI runs this before the tests (.ci/run).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

bench: setup
	$(BIN)/python benchmarks/bench_plan.py
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_plan_scale.py
	$(BIN)/python benchmarks/bench_slurm.py
	$(BIN)/python benchmarks/bench_boot.py
	$(BIN)/python benchmarks/bench_users.py
	$(BIN)/python benchmarks/bench_accounts.py
	$(BIN)/python benchmarks/bench_series.py

up: setup
	$(BIN)/azcluster up $(STACK)

down: setup
	$(BIN)/azcluster down $(STACK)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
