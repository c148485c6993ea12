# tsad: `make demo` runs the nightly DAG on embedded defaults; `make test` runs the test suite.
# Both set themselves up: a virtual environment in .venv with everything installed (pip, so the
# machine's local CPU wheel of torch is used), and an Airflow home in .airflow.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test ui clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m tsad.airflow_layer.demo

test: install
	$(PY) -m pytest -q

# Optional: the Airflow UI on http://localhost:8080 over the demo's set-up (Ctrl-C to stop).
ui: install
	$(PY) -m tsad.airflow_layer.demo --setup-only
	AIRFLOW_HOME=$(CURDIR)/.airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PARALLELISM=2 TSAD_CONFIG=$(CURDIR)/tsad.yaml \
	$(VENV)/bin/airflow standalone

clean:
	rm -rf data .airflow .pytest_cache
