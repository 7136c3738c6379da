# make demo   - set up .venv from nothing and run the demo (tiny audio thinker on the synthetic set, CPU)
# make test   - set up .venv from nothing and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo demo-quick test bench clean

$(VENV)/.installed: pyproject.toml requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet -c requirements-cpu.txt torch
	$(PY) -m pip install --quiet -c requirements-cpu.txt -e ".[test,serve]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/audiothinker demo

demo-quick: setup
	$(VENV)/bin/audiothinker demo --quick

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m pip install --quiet -c requirements-cpu.txt -e ".[bench]"
	$(PY) benchmarks/step_time.py
	$(PY) benchmarks/judge_throughput.py

clean:
	rm -rf $(VENV) runs
