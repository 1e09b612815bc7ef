# `make demo` and `make test` do all the set-up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_RUN := runs/demo

.PHONY: setup system-data demo test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

system-data:
	@bash scripts/install-system-data.sh

# Train the essay's GAN (genlab/recipes/essay-mlp-mnist.yaml) on MNIST, write samples and report.json.
demo: setup system-data
	rm -rf $(DEMO_RUN)
	$(PY) -m genlab train essay-mlp-mnist --out $(DEMO_RUN)
	$(PY) -m genlab generate $(DEMO_RUN) --n 100 --out $(DEMO_RUN)/samples.png
	$(PY) -m genlab eval $(DEMO_RUN)
	@echo "samples: $(DEMO_RUN)/samples.png  report: $(DEMO_RUN)/report.json"

# One pytest-xdist worker per core, each test file on one worker (its module fixtures train once)
test: setup system-data lint
	$(PY) -m pytest -q -n auto --dist loadfile

# ruff's rule set is in pyproject.toml; both checks must report nothing
lint: setup
	$(VENV)/bin/ruff check genlab tests benchmarks scripts
	$(VENV)/bin/ruff format --check genlab tests benchmarks scripts

clean:
	rm -rf $(VENV) runs
