# The pip path: `make demo` (the main job) and `make test` (everything) each set themselves up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1
# Keep test DDS traffic off other machines' graphs and away from parallel runs.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test demo model bench lint clean

setup: $(STAMP)

# Re-run only when the pinned requirements or the package metadata change.
$(STAMP): requirements.txt requirements-ros.txt setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-ros.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: setup lint bench-pusht-setup
	$(VENV)/bin/python -m pytest -q test

lint: setup
	$(VENV)/bin/ruff check ami_world_model test launch scripts benchmarks/pusht

demo: setup
	$(VENV)/bin/ami-wm demo

model: setup
	bash scripts/make_default_model.sh

bench: setup
	$(VENV)/bin/ami-wm bench

# PushT benchmark (benchmarks/pusht/README.md): its own venv with the extra; the core never imports it.
.PHONY: bench-pusht bench-pusht-setup
BENCH_VENV := benchmarks/pusht/.venv
BENCH_STAMP := $(BENCH_VENV)/.setup-stamp
bench-pusht-setup: $(BENCH_STAMP)
$(BENCH_STAMP): requirements.txt requirements-bench.txt benchmarks/pusht/requirements-nodeps.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q -r requirements.txt -r requirements-bench.txt
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -r benchmarks/pusht/requirements-nodeps.txt
	touch $(BENCH_STAMP)

bench-pusht: bench-pusht-setup
	$(BENCH_VENV)/bin/python benchmarks/pusht/run.py --out benchmarks/pusht/runs/full --results benchmarks/pusht/results.json

clean:
	rm -rf $(VENV) build install log *.egg-info results
