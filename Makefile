# The one way in: `make demo` runs the main job, `make test` the whole suite (lint included).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean postgres browser java

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

demo: install
	$(BIN)/leadscore demo --models models --leads 20000 --out out/demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint postgres browser java
	$(BIN)/pytest -q

# The store tests start a throwaway PostgreSQL server of their own (tests/conftest.py) and
# need only its binaries; install them on Debian/Ubuntu when missing. The package's own
# cluster (port 5432) is not wanted: createcluster.d tells the package not to create it.
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

postgres:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  set -e; \
	  echo "Installing PostgreSQL (apt-get) for the store tests"; \
	  $(SUDO) mkdir -p /etc/postgresql-common/createcluster.d; \
	  echo "create_main_cluster = false" \
	    | $(SUDO) tee /etc/postgresql-common/createcluster.d/leadscore-tests.conf >/dev/null; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  for c in $$(pg_lsclusters -h 2>/dev/null | awk '$$4 == "online" {print $$1 "/" $$2}'); do \
	    $(SUDO) pg_ctlcluster $${c%/*} $${c#*/} stop || true; \
	  done; \
	fi

# The report test renders the backtest report in a real headless Chromium, driven through
# the system chromedriver (never downloaded); install both on Debian/Ubuntu when missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  set -e; \
	  echo "Installing Chromium and chromedriver (apt-get) for the report tests"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# The Spark tests run PySpark in local mode, which needs a Java runtime (17 or 21).
java:
	@if ! command -v java >/dev/null 2>&1; then \
	  set -e; \
	  echo "Installing a Java runtime (apt-get) for the Spark tests"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless; \
	fi

bench: install postgres java
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/service.py
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/learn.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
