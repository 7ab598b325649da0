# Every target creates .venv and installs what is missing (idempotent: the stamp is keyed on
# pyproject.toml's hash), and installs the Debian packages the project reads (apt, as root).
SHELL := /bin/bash
PROFILE ?= quick
OUT ?= paper_figures
ARTIFACTS ?= artifacts
EXPERIMENTS ?=
comma := ,
space := $() $()
# EXPERIMENTS="a b" runs only those experiments (no conditional ones) instead of the notebook's list
EXPERIMENTS_YAML = {experiments: [$(subst $(space),$(comma),$(strip $(EXPERIMENTS)))]$(comma) conditional: []}
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
DEBS := dataset-fashion-mnist chromium

.PHONY: setup system reproduce test app edit bench clean

setup: $(STAMP) system

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

system:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "dwf needs the Debian packages:$$missing. Install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

reproduce: setup
	@mkdir -p $(ARTIFACTS)
	$(PY) -m papermill notebooks/reproduce.ipynb $(ARTIFACTS)/reproduce-$(PROFILE).ipynb -k python3 --log-output \
	  -p profile $(PROFILE) -p out_dir $(OUT) -p artifacts $(ARTIFACTS) \
	  $(if $(strip $(EXPERIMENTS)),-y "$(EXPERIMENTS_YAML)")
	$(if $(and $(filter paper_figures,$(OUT)),$(filter quick,$(PROFILE)),$(if $(strip $(EXPERIMENTS)),,x)),$(PY) -m dwf readme)

test: setup
	$(PY) -m pytest -q --durations=20

app: setup
	$(VENV)/bin/marimo run app.py

edit: setup
	$(VENV)/bin/marimo edit notebooks/walkthrough.py

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf artifacts __marimo__ .pytest_cache
