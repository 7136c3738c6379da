"""`audiothinker eval` and `evaluate_policy`: canned completions through the official scorers,
then tiny-model runs (synthetic set, MMAU metadata with stand-in audio), resume and missing audio."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from audiothinker.cli import main
from audiothinker.data.loaders import load_records
from audiothinker.data.records import AudioQA
from audiothinker.data.synthetic import generate_items, write_synthetic
from audiothinker.eval.run import (
    evaluate_policy,
    official_scorer,
    prediction_record,
    score_completions,
    write_predictions,
)
from audiothinker.eval.score import score_file
from audiothinker.judge.rule import RuleJudge

MMAU_FILE = Path("/work/shared/benchmarks/mmau/mmau-test-mini.json")
needs_mmau = pytest.mark.skipif(not MMAU_FILE.exists(), reason="MMAU metadata not present")
TINY = ["--model", "tiny:qwen2_audio", "--batch-size", "4", "--max-new-tokens", "16"]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def mmau_subset(tmp_path: Path, n: int = 6, with_audio: bool = True) -> tuple[Path, Path, list[dict]]:
    """The first n MMAU test-mini records in a temp JSON, with 1 s stand-in WAVs where the loader looks."""
    raw = json.loads(MMAU_FILE.read_text())[:n]
    data, root = tmp_path / "mmau.json", tmp_path / "audio"
    data.write_text(json.dumps(raw))
    if with_audio:
        rng = np.random.default_rng(0)
        for r in raw:
            path = root / r["audio_id"]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    return data, root, raw


def assert_valid_png(path: Path) -> None:
    with Image.open(path) as im:
        im.verify()
        assert im.format == "PNG"


# --------------------------------------------------------------------------- no model


def test_score_completions_modes_and_rule_judge():
    rec = AudioQA("a", "x.wav", "Is the tone high or low?", ["high", "low"], "high", difficulty="easy", task="pitch")
    texts = [
        "<answer>high</answer>",  # no-think, right
        "<think>It sounds high. So the answer is high.</think><answer>high</answer>",  # think, consistent
        "<think>It sounds low. So the answer is low.</think><answer>high</answer>",  # right but inconsistent
        "high",  # no tags: format failure, wrong for our matcher
    ]
    rows = score_completions([rec] * 4, texts, [False, False, False, True], judge=RuleJudge())
    assert [r["think_mode"] for r in rows] == ["no_think", "think", "think", "none"]
    assert [r["correct"] for r in rows] == [True, True, True, False]
    assert [r["consistency"] for r in rows] == [None, 1.0, 0.0, None]
    assert [r["prediction"] for r in rows] == ["high", "high", "high", "high"]
    assert rows[3]["truncated"] and not rows[3]["format_ok"]


@needs_mmau
def test_mmau_prediction_file_scores_as_official(tmp_path):
    data, root, raw = mmau_subset(tmp_path, with_audio=False)
    records = load_records(data, "mmau", audio_root=root).records
    outputs = [  # raw[0] answer "Man", raw[1] "A woman"
        "<think>A deep voice.</think><answer>Man</answer>",
        "<think>Maybe a child.</think><answer>A woman</answer>",  # the think block's option is not seen
        "<answer>" + raw[2]["choices"][0] + "</answer>",
        "no tags " + raw[3]["answer"],
        "<answer></answer>",
        raw[5]["answer"],
    ]
    preds = [prediction_record("mmau", r, o) for r, o in zip(records, outputs)]
    assert preds[1]["model_output"] == "A woman" and preds[1]["think_mode"] == "think" and preds[1]["format_ok"]
    assert {k: v for k, v in preds[0].items() if k in raw[0]} == raw[0]  # the metadata is kept as is
    path = write_predictions(tmp_path / "predictions.json", preds, json_list=True)
    official = score_file("mmau", path)
    per_item = [official_scorer("mmau")(r, o) for r, o in zip(records, outputs)]
    assert official["total"] == [sum(per_item), len(per_item)]
    assert per_item[:2] == [True, True] and per_item[4] is False


@pytest.mark.parametrize(
    "raw_output, written",
    [
        ("<think>maybe a cat</think><answer>dog</answer>", "dog"),
        ("<think>maybe a cat</think> dog", "dog"),  # no <answer>: the think block is dropped
        ("<think>maybe a cat, or a dog", ""),  # cut off while thinking: nothing is left to score
        ("maybe a cat</think>\ndog", "dog"),  # lone </think> (opening tag in the prompt)
        ("<think>cat</think><answer>dog", "dog"),  # cut off inside the answer
        ("  dog \n", "dog"),  # untagged: only stripped
        ("<think><answer>cat</answer></think><answer>dog</answer>", "dog"),  # an answer quoted while thinking
    ],
)
def test_official_key_never_holds_think_text(raw_output, written):
    rec = AudioQA("q", "a.wav", "Which?", ["cat", "dog"], "dog", task="sound", difficulty="easy",
                  metadata={"raw": {"id": "q", "choices": ["cat", "dog"], "answer": "dog", "task": "sound",
                                    "difficulty": "easy"}})
    pred = prediction_record("mmau", rec, raw_output)
    assert pred["model_output"] == written and pred["raw_output"] == raw_output
    # The official scorer reads the key as given: right iff what was written names "dog" alone.
    assert official_scorer("mmau")(rec, raw_output) is (written == "dog")


def test_airbench_response_without_answer_tag():
    raw = {"path": "a.wav", "question": "Which?", "choice_a": "dog", "choice_b": "Cat", "answer_gt": "Cat",
           "task_name": "Sound_AQA", "dataset_name": "clotho", "uniq_id": 7}
    rec = AudioQA("7", "a.wav", "Which?", ["dog", "Cat"], "Cat", task="Sound_AQA", metadata={"raw": raw})
    # The think block's "A" would be read as the letter; dropped, the rest names Cat: "B".
    assert prediction_record("airbench", rec, "<think>A dog?</think> Cat")["response"] == "B"
    assert prediction_record("airbench", rec, "<think>A dog?")["response"] == ""
    assert official_scorer("airbench")(rec, "<think>A dog?") is None  # an empty response: a failure


def test_airbench_response_is_the_option_letter():
    raw = {"path": "a.wav", "question": "Which?", "choice_a": "dog", "choice_b": "Cat", "choice_c": "bird",
           "answer_gt": "Cat", "task_name": "Sound_AQA", "dataset_name": "clotho", "uniq_id": 7}
    rec = AudioQA("7", "a.wav", "Which?", ["dog", "Cat", "bird"], "Cat", task="Sound_AQA", metadata={"raw": raw})
    assert prediction_record("airbench", rec, "<answer>cat</answer>")["response"] == "B"
    assert prediction_record("airbench", rec, "<answer>(C)</answer>")["response"] == "C"
    assert prediction_record("airbench", rec, "<answer>a horse</answer>")["response"] == "a horse"
    score = official_scorer("airbench")
    assert score(rec, "<answer>Cat</answer>") is True
    assert score(rec, "<answer>dog</answer>") is False
    assert score(rec, "<answer>a horse</answer>") is None  # unreadable: out of the denominator


@needs_mmau
def test_missing_audio_is_reported_before_model_work(tmp_path, monkeypatch, capsys):
    import audiothinker.models.loading as loading

    def no_model(*a, **k):
        raise AssertionError("the model must not be loaded when audio is missing")

    monkeypatch.setattr(loading, "load_policy", no_model)
    data, root, raw = mmau_subset(tmp_path)
    for r in raw[1:3]:
        (root / r["audio_id"]).unlink()
    rc = main(["eval", "--benchmark", "mmau", "--data", str(data), "--audio-root", str(root), "--out",
               str(tmp_path / "out"), *TINY])
    err = capsys.readouterr().err
    assert rc == 1 and "2 of 6 audio files are missing" in err and raw[1]["audio_id"][2:] in err
    assert "--skip-missing" in err and not (tmp_path / "out" / "predictions.json").exists()


# --------------------------------------------------------------------------- tiny model


def test_evaluate_policy_library_call(models):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    policy = load_policy(ModelConfig(name_or_path="tiny:qwen2_audio"), cache_dir=models)
    seen = []
    summary, rows = evaluate_policy(policy, policy.model, generate_items(3, 5), "adaptive", batch_size=2,
                                    max_new_tokens=8, judge=RuleJudge(), on_batch=seen.append)
    assert [len(b) for b in seen] == [2, 1] and [r["id"] for r in rows] == ["syn-5-00000", "syn-5-00001", "syn-5-00002"]
    assert summary["n"] == 3 and set(summary["by_difficulty"]) == {"easy", "medium", "hard"}
    for key in ("accuracy", "no_think_rate", "format_rate", "inconsistency_rate", "by_task"):
        assert key in summary
    assert set(summary["by_difficulty"]["easy"]) >= {"accuracy", "no_think_rate", "n"}


def test_eval_synthetic_end_to_end_and_resume(tmp_path, models):
    data = write_synthetic(tmp_path / "data", 8, 0, split="test")
    out = tmp_path / "out"
    args = ["eval", "--benchmark", "jsonl", "--data", str(data), "--prompt", "adaptive", "--out", str(out),
            "--models-cache", models, *TINY]
    assert main([*args, "--limit", "4"]) == 0
    partial = (out / "predictions.partial.jsonl").read_text().splitlines()
    assert len(partial) == 4 and json.loads((out / "report.json").read_text())["run"]["generated_this_run"] == 4

    assert main([*args, "--limit", "8"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["generated_this_run"] == 4  # only the 4 unfinished items were generated
    after = (out / "predictions.partial.jsonl").read_text().splitlines()
    assert len(after) == 8 and after[:4] == partial
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"syn-1000003-{i:05d}" for i in range(8)]
    for p in preds:
        assert {"prediction", "raw_output", "think_mode", "format_ok", "answer", "choices"} <= set(p)
        assert p["think_mode"] in ("think", "no_think", "none")
    s = report["summary"]
    assert s["n"] == 8 and s["n_scored"] == 8 and set(s["by_difficulty"]) == {"easy", "medium", "hard"}
    assert report["run"]["judge_backend"] == "rule" and report["official"] is None
    for name in ("accuracy_by_task", "accuracy_by_difficulty", "no_think_rate_by_difficulty"):
        assert_valid_png(out / f"{name}.png")
    assert (out / "report.md").read_text().startswith("# jsonl: tiny:qwen2_audio (adaptive)")

    # Other settings in the same --out are refused rather than mixed in.
    assert main([*args, "--limit", "8", "--prompt", "think"]) == 1


@needs_mmau
def test_eval_mmau_official_format(tmp_path, models):
    data, root, raw = mmau_subset(tmp_path)
    (root / raw[5]["audio_id"]).unlink()
    out = tmp_path / "out"
    rc = main(["eval", "--benchmark", "mmau", "--data", str(data), "--audio-root", str(root), "--out", str(out),
               "--prompt", "adaptive", "--models-cache", models, "--skip-missing", *TINY])
    assert rc == 0
    preds = json.loads((out / "predictions.json").read_text())  # MMAU's format: a JSON list
    assert [p["id"] for p in preds] == [r["id"] for r in raw[:5]]
    for p, r in zip(preds, raw):
        assert {k: p[k] for k in r} == r and isinstance(p["model_output"], str)
        assert {"raw_output", "think_mode", "format_ok"} <= set(p)
    report = json.loads((out / "report.json").read_text())
    official = score_file("mmau", out / "predictions.json")
    assert official == report["official"]
    assert official["total"] == [report["summary"]["n_correct"], report["summary"]["n_scored"]] and official["total"][1] == 5
    assert report["run"]["skipped_missing_audio"] == 1 and report["run"]["judge_backend"] == "none"
    assert report["summary"]["inconsistency_rate"] is None
    assert_valid_png(out / "accuracy_by_difficulty.png")
