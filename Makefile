# tsad: `make demo` runs the nightly DAG on embedded defaults; `make ui` opens Airflow's UI over
# it; `make test` runs the test suite. All set themselves up: a virtual environment in .venv
# (pip, so the machine's local CPU wheel of torch is used) and an Airflow home in .airflow.
# The demo and the UI need tsad[airflow]; the test extras are installed by `make test` only.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp
# `airflow standalone` starts its components by looking `airflow` up on PATH
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install install-test demo test ui clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing tsad with Airflow and PyTorch into $(VENV) (about 150 packages, a few minutes the first time)"
	$(PY) -m pip install --progress-bar on -e '.[airflow]'
	@# setuptools leaves tsad.egg-info in plugins/, which Airflow puts on sys.path: it would then
	@# see tsad twice and report its plugin "already registered" (the venv keeps the metadata)
	rm -rf plugins/tsad.egg-info
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "installing the test extras (PostgreSQL driver, S3 stand-in, browser test tools)"
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	rm -rf plugins/tsad.egg-info
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

demo: install
	$(PY) -m tsad.airflow_layer.demo

test: install-test
	$(PY) -m pytest -q

# The Airflow UI over the demo's set-up: prints the URL and the admin password once every
# component is healthy (port: TSAD_UI_PORT, default 8080). Ctrl-C stops every Airflow process.
ui: install
	$(PY) -m tsad.airflow_layer.demo --setup-only
	$(PY) -m tsad.airflow_layer.standalone

clean:
	rm -rf data .airflow .pytest_cache
