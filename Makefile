# Everything goes through .venv; each target creates it when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench lint clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q triton
	$(PY) -m pip install -q -e '.[dev,cueq,nequip]' $(TORCH_PIN)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/irrepscope demo

# The report tests open report.html in headless Chromium; without it they skip (and say so).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	  echo "Chromium could not be installed (apt-get install -y chromium): browser tests will skip"

test: $(STAMP) browser
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q sphericart-torch $(TORCH_PIN) || echo "sphericart-torch could not be installed: benchmarking without it"
	$(VENV)/bin/irrepscope bench all

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) build *.egg-info
