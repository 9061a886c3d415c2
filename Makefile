# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs; nothing else is assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: bench-big bench-50m demo test test-fast lint format bench clean browser fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# plugin packages of this repo, installed editable next to the engine for the tests
PLUGINS := $(wildcard plugins/postgres plugins/spark plugins/example-functions plugins/clickhouse plugins/mysql)

$(VENV)/.test: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	$(BIN)/kpi demo --out demo

# Throwaway PostgreSQL and MariaDB servers (scripts/engines-run.sh) are up while the tests run and are
# removed after them, whatever their outcome; the exit status is pytest's.
test: $(VENV)/.test lint browser
	scripts/engines-run.sh $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -q -m "not slow" -x $(PYTEST_ARGS)

browser:  # Chromium for the report's browser test (Debian package; needs root)
	@scripts/install-chromium.sh

lint: $(VENV)/.test
	$(BIN)/ruff check kpiengine tests bench plugins
	$(BIN)/ruff format --check kpiengine tests bench plugins
	$(BIN)/mypy

format: $(VENV)/.test
	$(BIN)/ruff check --fix kpiengine tests bench plugins
	$(BIN)/ruff format kpiengine tests bench plugins

# Property-based fuzzing of definitions (tests/test_fuzz.py): token sequences, typed
# expressions and rules, YAML documents. `make test` runs 20 000 examples; this runs more.
KPI_FUZZ_EXAMPLES ?= 100000
fuzz: $(VENV)/.test
	KPI_FUZZ_EXAMPLES=$(KPI_FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m slow -p no:cacheprovider \
		--hypothesis-show-statistics tests/test_fuzz.py $(PYTEST_ARGS)

bench: $(VENV)/.test  # prints ratios against same-run baselines; see docs/performance.md
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/compile_speed.py
	$(BIN)/python bench/execute_speed.py
	$(BIN)/python bench/hand_sql.py 1000000
	$(BIN)/python bench/windows_speed.py 1000000
	$(BIN)/python bench/spark_speed.py 1000000

bench-big: $(VENV)/.test  # once, late: 10M rows (1.5 GB RAM and 2 min to generate, 4.3 GB on disk)
	$(BIN)/python bench/hand_sql.py 10000000 5
	$(BIN)/python bench/hand_sql.py 10000000 5 catalog --memory-limit 4GB
	$(BIN)/python bench/windows_speed.py 10000000 5
	$(BIN)/python bench/execute_speed.py 10000000
	$(BIN)/python bench/spark_speed.py 10000000 --repeat 1 --memory 4g
	$(BIN)/python bench/sample_memory.py 10000000
	$(BIN)/python bench/sample_memory.py 10000000 --to duckdb:///bench/.data/tmp-10m.duckdb
	$(BIN)/python bench/catalog_growth.py 3 1000000 10000000
	$(BIN)/python bench/catalog_growth.py 3 1000000 10000000 --memory-limit 4GB
	$(BIN)/python bench/spill_profile.py 10000000

bench-50m: $(VENV)/.test  # the catalog's growth up to 50M rows: 19 GB of disk, ≈ 15 min to generate
	$(BIN)/python bench/sample_memory.py 50000000
	$(BIN)/python bench/sample_memory.py 50000000 --trace --to duckdb:///bench/.data/tmp-50m.duckdb
	$(BIN)/python bench/catalog_growth.py 3 1000000 10000000 50000000

clean:
	rm -rf $(VENV) build dist demo .pytest_cache .ruff_cache
