# Everything goes through .venv; each target creates it when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
# MACE's environment: mace-torch 0.3.16 pins e3nn 0.4.4 (nequip needs 0.6), so a venv of its own
MACE_VENV := .venv-mace
MACE_STAMP := $(MACE_VENV)/.installed
# what runs under e3nn 0.4.4: the MACE adapter and CLI, and the e3nn-facing core. On the 2-core
# development machine: creating .venv-mace 52 s (pip cache warm; 2 min 14 s under load), these
# tests 25 s (a tiny MACE trained by mace_run_train included).
MACE_TESTS := tests/analysis/test_mace_adapter.py tests/integration/test_cli_mace.py \
	tests/test_weights_only.py tests/analysis/test_layout.py tests/analysis/test_features.py \
	tests/sph/test_api.py

.PHONY: venv venv-mace demo test test-mace bench lint clean browser

venv: $(STAMP)

venv-mace: $(MACE_STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q triton
	$(PY) -m pip install -q -e '.[dev,cueq,nequip,allegro]' $(TORCH_PIN)
	touch $(STAMP)

$(MACE_STAMP): pyproject.toml Makefile
	test -x $(MACE_VENV)/bin/python || $(PYTHON) -m venv $(MACE_VENV)
	$(MACE_VENV)/bin/python -m pip install -q --upgrade pip
	$(MACE_VENV)/bin/python -m pip install -q $(TORCH_PIN)
	$(MACE_VENV)/bin/python -m pip install -q -e '.[dev,mace]' $(TORCH_PIN)
	touch $(MACE_STAMP)

demo: $(STAMP)
	$(VENV)/bin/irrepscope demo

# The report tests open report.html in headless Chromium; without it they skip (and say so).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	  echo "Chromium could not be installed (apt-get install -y chromium): browser tests will skip"

test: $(STAMP) $(MACE_STAMP) browser
	$(PY) -m pytest -q
	$(MACE_VENV)/bin/python -m pytest -q $(MACE_TESTS)

test-mace: $(MACE_STAMP)
	$(MACE_VENV)/bin/python -m pytest -q $(MACE_TESTS)

bench: $(STAMP)
	$(PY) -m pip install -q sphericart-torch $(TORCH_PIN) || echo "sphericart-torch could not be installed: benchmarking without it"
	$(VENV)/bin/irrepscope bench all

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) $(MACE_VENV) build *.egg-info
