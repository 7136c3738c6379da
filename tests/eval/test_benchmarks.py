"""The benchmark registry: a benchmark is one registered object, and `score`, `eval`, the eval
library, the loaders and config's `data.format` all read it. A dummy registered inside the test
shows each of them picking it up; the `eval` CLI and `EvalOptions` agree on every default."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from audiothinker.cli import build_parser, main
from audiothinker.data.loaders import FORMATS, load_records
from audiothinker.data.records import AudioQA
from audiothinker.eval.benchmarks import BENCHMARKS, benchmark_names, register_benchmark
from audiothinker.eval.official import mmau_match
from audiothinker.eval.run import EvalOptions, official_scorer, prediction_record
from audiothinker.eval.score import ChoiceBenchmark, ScoreError, score_records


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def parse_dummy(raw, source):
    """A made-up metadata schema: key, wav, q, choices, answer, kind (the word-set scorer reads the last three)."""
    return AudioQA(id=str(raw["key"]), audio=source.resolve(raw["wav"]), question=raw["q"], choices=raw["choices"],
                   answer=raw["answer"], task=raw["kind"], metadata={"raw": raw})


@pytest.fixture
def dummy():
    """A word-set benchmark with its own parser, registered for one test and removed after it."""
    bench = register_benchmark(ChoiceBenchmark(
        name="dummy", format="dummy", parse=parse_dummy, prediction_key="guess", json_list=False,
        groups=(("kind", ("a", "b")),), match=mmau_match,
    ))
    yield bench
    del BENCHMARKS["dummy"]
    del FORMATS["dummy"]


def dummy_raw(i: int, kind: str = "a") -> dict:
    return {"key": i, "wav": f"clip{i}.wav", "q": "Which animal?", "choices": ["dog", "cat"], "answer": "dog", "kind": kind}


def test_the_paper_benchmarks_are_registered_in_its_order():
    assert benchmark_names() == ["mmau", "mmar", "airbench", "jsonl"]
    assert benchmark_names(official=True) == ["mmau", "mmar", "airbench"]
    assert {"mmau", "mmar", "airbench", "jsonl", "avqa", "synthetic"} <= set(FORMATS)
    for name in ("mmau", "mmar", "airbench"):
        assert FORMATS[name] is BENCHMARKS[name].parse
    with pytest.raises(KeyError, match="unknown benchmark 'nope'; valid: mmau, mmar, airbench, jsonl"):
        BENCHMARKS["nope"]


def test_a_registered_benchmark_is_a_choice_of_score_and_eval(dummy):
    parser = build_parser()
    assert parser.parse_args(["score", "--benchmark", "dummy", "p.jsonl"]).benchmark == "dummy"
    args = parser.parse_args(["eval", "--benchmark", "dummy", "--data", "d", "--model", "m", "--out", "o"])
    assert args.benchmark == "dummy"
    assert "dummy" in benchmark_names(official=True)


def test_without_it_neither_command_accepts_the_name(capsys):
    for argv in (["score", "--benchmark", "dummy", "p.jsonl"],
                 ["eval", "--benchmark", "dummy", "--data", "d", "--model", "m", "--out", "o"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert "invalid choice: 'dummy'" in capsys.readouterr().err
    with pytest.raises(ScoreError, match=r"unknown benchmark 'dummy'; valid: mmau, mmar, airbench"):
        score_records("dummy", [])


def test_a_registered_benchmark_is_scored_loaded_and_configurable(dummy, tmp_path, capsys):
    records = [{**dummy_raw(0), "guess": "dog"}, {**dummy_raw(1, "b"), "guess": "a cat"}, dummy_raw(2)]
    result = score_records("dummy", records)
    assert result["total"] == [1, 2] and result["kind"] == {"a": [1, 1], "b": [0, 1]} and result["no_prediction"] == 1
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["score", "--benchmark", "dummy", str(path), "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["total"] == [1, 2]
    assert "1 records have no 'guess' prediction" in capsys.readouterr().err

    loaded = load_records(path, "dummy")
    assert [r.id for r in loaded.records] == ["0", "1", "2"] and loaded.records[0].audio == str(tmp_path / "clip0.wav")

    from audiothinker.config import ConfigError, load_config

    assert load_config(None, ["data.format=dummy", f"data.train_file={path}"]).data.format == "dummy"
    with pytest.raises(ConfigError, match="data.format: 'nope' is not one of .*'dummy'"):
        load_config(None, ["data.format=nope", f"data.train_file={path}"])


def test_eval_writes_and_scores_a_registered_benchmark(dummy, tmp_path, models):
    rec = parse_dummy(dummy_raw(0), type("S", (), {"resolve": staticmethod(lambda p: p)}))
    written = prediction_record("dummy", rec, "<think>barks</think><answer>dog</answer>")
    assert written["guess"] == "dog" and written["key"] == 0 and written["think_mode"] == "think"
    assert official_scorer("dummy")(rec, "<answer>dog</answer>") is True
    assert official_scorer("dummy")(rec, "<answer>cat</answer>") is False

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(dummy_raw(i, "ab"[i % 2])) + "\n" for i in range(3)))
    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    out = tmp_path / "out"
    assert main(["eval", "--benchmark", "dummy", "--data", str(data), "--out", str(out), "--model", "tiny:qwen2_audio",
                 "--batch-size", "4", "--max-new-tokens", "8", "--models-cache", models]) == 0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["key"] for p in preds] == [0, 1, 2] and all("guess" in p for p in preds)
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["scorer"] == "official" and report["official"] == score_records("dummy", preds)


def test_registering_a_name_twice_is_an_error(dummy):
    with pytest.raises(ValueError, match="'dummy' is registered twice"):
        register_benchmark(dataclasses.replace(dummy))


def test_eval_cli_defaults_are_the_options_defaults():
    args = build_parser().parse_args(["eval", "--benchmark", "mmau", "--data", "d", "--model", "m", "--out", "o"])
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalOptions)}
    assert EvalOptions(**flags) == EvalOptions(benchmark="mmau", data="d", model="m", out="o")
