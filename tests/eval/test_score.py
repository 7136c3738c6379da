"""score_file / the `score` command: file formats, official skipping, strict mode, errors,
and the real MMAU test-mini and MMAR metadata. Counts are worked out by hand in comments."""

import argparse
import json
from pathlib import Path

import pytest

from audiothinker.eval.score import ScoreError, add_parser, run, score_file, score_records

BENCH = Path("/work/shared/benchmarks")
MMAU_FILE = BENCH / "mmau" / "mmau-test-mini.json"
MMAR_FILE = BENCH / "mmar" / "MMAR-meta.jsonl"
needs_bench = pytest.mark.skipif(not MMAU_FILE.exists(), reason="benchmark metadata not present")


def write_json(path: Path, records) -> Path:
    path.write_text(json.dumps(records))
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def mmau(i, task, difficulty, subcat, **extra):
    return {"id": f"q{i}", "choices": ["cat", "dog", "bird"], "answer": "dog", "task": task,
            "difficulty": difficulty, "sub-category": subcat, **extra}


MMAU_RECORDS = [
    # 0: right.
    mmau(0, "sound", "easy", "S1", model_output="dog"),
    # 1: official: wrong, the think block's "cat" is read as given. --extract-answer: "dog", right.
    mmau(1, "sound", "hard", "S1", model_output="<think>maybe cat</think><answer>dog</answer>"),
    # 2: official: wrong ("cat"). --extract-answer: no <answer>, the think block is dropped: "dog", right.
    mmau(2, "music", "easy", "S2", model_output="<think>maybe cat</think> dog"),
    # 3: official: words {"answer"}, no "dog": wrong. --extract-answer: "" has no words: wrong.
    mmau(3, "music", "medium", "S2", model_output="<answer></answer>"),
    # 4: no model_output key: skipped (official), wrong under strict.
    mmau(4, "speech", "medium", "S2"),
    # 5: null model_output: treated like a missing key.
    mmau(5, "speech", "hard", "S2", model_output=None),
]


def test_mmau_official_counts(tmp_path):
    r = score_file("mmau", write_json(tmp_path / "p.json", MMAU_RECORDS))
    # Scored: 0 (right), 1, 2, 3 (wrong); 4 and 5 skipped and counted as without prediction.
    assert r == {
        "total": [1, 4],
        "task": {"sound": [1, 2], "music": [0, 2], "speech": [0, 0]},  # preset keys kept at [0, 0]
        "difficulty": {"easy": [1, 2], "hard": [0, 1], "medium": [0, 1]},
        "sub-category": {"S1": [1, 2], "S2": [0, 2]},
        "no_prediction": 2,
    }


def test_mmau_extract_answer_reduces_first(tmp_path):
    r = score_file("mmau", write_json(tmp_path / "p.json", MMAU_RECORDS), extract_answer=True)
    # 0, 1, 2 right; 3 wrong.
    assert r["total"] == [3, 4]
    assert r["task"] == {"sound": [2, 2], "music": [1, 2], "speech": [0, 0]}
    assert r["difficulty"] == {"easy": [2, 2], "hard": [1, 1], "medium": [0, 1]}


def test_mmau_strict_counts_missing_as_wrong(tmp_path):
    r = score_file("mmau", write_json(tmp_path / "p.json", MMAU_RECORDS), strict=True)
    # Records 4 (speech/medium) and 5 (speech/hard) now count as wrong.
    assert r["total"] == [1, 6]
    assert r["task"]["speech"] == [0, 2]
    assert r["difficulty"] == {"easy": [1, 2], "hard": [0, 2], "medium": [0, 2]}
    assert r["sub-category"]["S2"] == [0, 4]
    assert r["no_prediction"] == 2


def test_mmau_unknown_label_and_missing_subcategory():
    # The official script would crash on task "other" (KeyError); we give it its own row.
    # A record without "sub-category" is counted in total/task/difficulty only (.get in official).
    recs = [mmau(0, "other", "easy", None, model_output="dog")]
    del recs[0]["sub-category"]
    r = score_records("mmau", recs)
    assert r["total"] == [1, 1]
    assert r["task"]["other"] == [1, 1]
    assert r["sub-category"] == {}


def test_record_without_prediction_is_skipped_before_its_fields_are_read():
    # The official loop `continue`s on a missing key before reading answer/task/choices, so a
    # record with neither a prediction nor metadata is no error there, and none here.
    recs = [mmau(0, "sound", "easy", "S", model_output="dog"), {"id": "bare"}]
    assert score_records("mmau", recs)["total"] == [1, 1]
    with pytest.raises(ScoreError, match=r"record 1 \(id=bare\): missing required field 'answer'"):
        score_records("mmau", recs, strict=True)  # strict counts it wrong, so it needs its fields


@pytest.mark.parametrize(
    "choices, prediction, official, extracted",
    [
        # Tags are text to the official matcher: "<answer>" contributes the word "answer".
        (["cat", "dog"], "<answer>dog</answer>", True, True),
        (["the answer", "dog"], "<answer>dog</answer>", False, True),  # "answer" is a wrong option's word
        # A think block naming another option fails officially; --extract-answer drops it.
        (["cat", "dog"], "<think>not the cat</think><answer>dog</answer>", False, True),
        (["cat", "dog"], "<think>dog, surely</think><answer>cat</answer>", False, False),
        # No <answer>: official reads everything; --extract-answer keeps what follows the think block.
        (["cat", "dog"], "<think>cat?</think> dog", False, True),
        (["cat", "dog"], "cat?</think> dog", False, True),  # lone </think>: what precedes is think text
        (["cat", "dog"], "<think>a dog, I think", True, False),  # unterminated think: nothing left
        (["cat", "dog"], "<answer> dog", True, True),  # cut off inside the answer
    ],
)
def test_tagged_mmau_outputs(choices, prediction, official, extracted):
    rec = {"id": "t", "choices": choices, "answer": "dog", "task": "sound", "difficulty": "easy",
           "model_output": prediction}
    assert score_records("mmau", [rec])["total"] == [int(official), 1]
    assert score_records("mmau", [rec], extract_answer=True)["total"] == [int(extracted), 1]


@pytest.mark.parametrize(
    "response, official, extracted",
    [
        # Letter read from the text as given: first character, else second-to-last (None: failure).
        ("<answer>B</answer>", None, "B"),  # "<" then "r": failure officially
        ("B</answer>", "B", "B"),
        ("<think>A?</think>B.", "B", "B"),  # second-to-last character
        ("<think>B or A?</think> A.", "A", "A"),
        ("<think>no, A</think><answer>B</answer>", None, "B"),
        ("B<think>x", "B", "B"),
        ("<think>it is B</think>", None, None),  # second-to-last is "k"; reduced, nothing is left
        ("Cat is B.", "C", "C"),  # quirk: a capital C first wins in both modes
    ],
)
def test_tagged_airbench_responses(response, official, extracted):
    def verdict(letter):  # gt is "y" = B on `air` records
        return [0, 0] if letter is None else [int(letter == "B"), 1]

    rec = air(0, "T", "D", response)
    assert score_records("airbench", [rec])["total"] == verdict(official)
    assert score_records("airbench", [rec], extract_answer=True)["total"] == verdict(extracted)


def mmar(i, modality, category, pred):
    return {"id": f"m{i}", "choices": ["From near to far", "From far to near", "Neither"],
            "answer": "From far to near", "modality": modality, "category": category,
            "sub-category": "Spatial Analysis", "answer_prediction": pred}


MMAR_RECORDS = [
    mmar(0, "sound", "Perception Layer", "From far to near"),  # right
    mmar(1, "sound", "Perception Layer", "From near to far"),  # judged right: same word set (quirk)
    mmar(2, "speech", "Signal Layer", "Neither"),  # wrong: 'neither' is a wrong word, answer words missing
    mmar(3, "music", "Cultural Layer", "B"),  # wrong: letter only
]


def test_jsonl_lines_end_only_at_newlines(tmp_path):
    # JSON allows U+2028, U+0085, \x1c and \x0c raw inside a string; the official readers
    # (text-mode open) split lines only at \n, \r\n and \r, so neither do we.
    recs = [mmar(0, "sound", "Perception Layer", "From far\u2028to near"),
            mmar(1, "sound", "Perception Layer", "Neither\x1c\x0c\u0085")]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in recs), encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw, not escaped
    assert score_file("mmar", path)["total"] == [1, 2]


def test_mmar_jsonl_and_json_list_score_the_same(tmp_path):
    a = score_file("mmar", write_jsonl(tmp_path / "p.jsonl", MMAR_RECORDS))
    b = score_file("mmar", write_json(tmp_path / "p.json", MMAR_RECORDS))
    assert a == b
    assert a["total"] == [2, 4]
    assert a["modality"]["sound"] == [2, 2] and a["modality"]["speech"] == [0, 1]
    assert a["modality"]["mix-sound-music-speech"] == [0, 0]
    assert list(a["category"]) == ["Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer"]
    assert a["sub-category"] == {"Spatial Analysis": [2, 4]}


def test_jsonl_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n" + json.dumps(MMAR_RECORDS[0]) + "\n\n" + json.dumps(MMAR_RECORDS[2]))
    assert score_file("mmar", path)["total"] == [1, 2]


def air(i, task, dataset, response, n=4, gt="y", **extra):
    rec = {"uniq_id": i, "path": f"{i}.wav", "question": "q", "task_name": task, "dataset_name": dataset,
           "choice_a": "x", "choice_b": "y", "answer_gt": gt, "response": response, **extra}
    if n == 4:
        rec.update(choice_c="z", choice_d="w")
    return rec


AIR_RECORDS = [
    air(0, "Gender", "Vox", "B"),  # B == gt B: right
    air(1, "Gender", "Vox", "The answer is B."),  # second-to-last 'B': right
    air(2, "Gender", "Vox", "The answer is B"),  # second-to-last ' ': failure
    air(3, "Gender", "Vox", "b"),  # lowercase, one char: failure
    air(4, "Genre", "Caps", "Answer: B"),  # first char 'A': wrong (quirk)
    air(5, "Genre", "Caps", "<think>A or C?</think><answer>B</answer>", n=2),  # "<" then ">": failure
    air(6, "Genre", "Caps", "C", n=2),  # C on a two-option item: wrong
    air(7, "Genre", "Caps", "None"),  # failure
    air(8, "Empty", "Set", ""),  # failure; its subset has no scored item
    air(9, None, "Vox", "B"),  # task_name null: skipped entirely (official), not a failure
]


def test_airbench_official_counts(tmp_path):
    r = score_file("airbench", write_jsonl(tmp_path / "p.jsonl", AIR_RECORDS))
    # Gender_Vox: 0, 1 scored (both right); 2, 3 fail. Genre_Caps: 4 wrong, 6 wrong; 5, 7 fail.
    assert r == {
        "total": [2, 4],
        "subset": {"Gender_Vox": [2, 2], "Genre_Caps": [0, 2], "Empty_Set": [0, 0]},
        "fail": 5,
        "no_prediction": 0,
    }
    # --extract-answer: record 5 reads as "B", right; nothing else changes.
    e = score_file("airbench", write_jsonl(tmp_path / "p.jsonl", AIR_RECORDS), extract_answer=True)
    assert (e["total"], e["subset"]["Genre_Caps"], e["fail"]) == ([3, 5], [1, 3], 4)


def test_airbench_missing_response_and_strict(tmp_path):
    recs = AIR_RECORDS + [air(10, "Genre", "Caps", None), air(11, "Genre", "Caps", "B")]
    del recs[-1]["response"]  # missing key: a failure (the official script would crash)
    r = score_file("airbench", write_json(tmp_path / "p.json", recs))
    assert r["fail"] == 7 and r["no_prediction"] == 2 and r["total"] == [2, 4]
    s = score_file("airbench", write_json(tmp_path / "p.json", recs), strict=True)
    # All 7 failures now count as wrong: Gender_Vox +2, Genre_Caps +4 (5, 7, 10, 11), Empty_Set +1.
    assert s == {
        "total": [2, 11],
        "subset": {"Gender_Vox": [2, 4], "Genre_Caps": [0, 6], "Empty_Set": [0, 1]},
        "fail": 7,
        "no_prediction": 2,
    }


def test_airbench_ground_truth_is_read_only_for_a_letter():
    # The official script looks answer_gt up only after reading a letter, and reads choice_b..d
    # only as far as needed: a failure with a broken ground truth is just a failure, and an
    # answer equal to choice_a needs no choice_b.
    broken = air(0, "T", "D", "no letter here", gt="nope")
    only_a = {k: v for k, v in air(1, "T", "D", "A", gt="x").items() if k != "choice_b"}
    r = score_records("airbench", [broken, only_a])
    assert (r["total"], r["fail"]) == ([1, 1], 1)
    with pytest.raises(ScoreError, match=r"uniq_id=2\): answer_gt 'nope' matches none"):
        score_records("airbench", [air(2, "T", "D", "B", gt="nope")])


@pytest.mark.parametrize(
    "benchmark, content, message",
    [
        ("mmau", "[{\"id\": 1,}]", r"p\.x: line 1: malformed JSON"),
        ("mmar", "{\"id\": 1}\n{oops}\n", r"p\.x: line 2: malformed JSON"),
        ("mmau", "[{\"id\": \"q7\", \"choices\": [\"a\"], \"task\": \"sound\", \"difficulty\": \"easy\", \"model_output\": \"a\"}]",
         r"record 0 \(id=q7\): missing required field 'answer'"),
        ("mmar", json.dumps({**mmar(3, "sound", "Signal Layer", "x"), "modality": None}),
         r"line 1 \(id=m3\): field 'modality' must be a string"),
        ("mmau", json.dumps([mmau(2, "sound", "easy", "S", model_output=["dog"])]),
         r"id=q2\): prediction 'model_output' must be a string, got list"),
        ("mmar", json.dumps(mmar(4, "sound", "Signal Layer", 3)), r"id=m4\): prediction 'answer_prediction' must be"),
        ("airbench", json.dumps(air(7, "T", "D", {"letter": "B"})), r"uniq_id=7\): prediction 'response' must be"),
        ("airbench", json.dumps(air(8, "T", "D", False)), r"uniq_id=8\): prediction 'response' must be a string, got bool"),
        ("airbench", json.dumps(air(5, "T", "D", "B", gt="nope")),
         r"uniq_id=5\): answer_gt 'nope' matches none"),
        ("airbench", json.dumps({k: v for k, v in air(6, "T", "D", "B").items() if k != "dataset_name"}),
         r"missing required field 'dataset_name'"),
        ("mmau", "  \n", r"empty prediction file"),
        ("mmau", "[]", r"p\.x: no records"),
        ("mmau", json.dumps([mmau(0, "sound", "easy", "S"), mmau(1, "sound", "easy", "S", model_output=None)]),
         r"p\.x: none of its 2 records has a prediction under 'model_output'"),
        ("airbench", json.dumps([mmau(0, "sound", "easy", "S", model_output="dog")]),  # MMAU file, wrong flag
         r"p\.x: none of its 1 records has a prediction under 'response' \(the key --benchmark airbench reads\)"),
        ("mmau", "[3]", r"record 0: expected a JSON object"),
        ("nope", "[]", r"unknown benchmark 'nope'; valid: mmau, mmar, airbench"),
    ],
)
def test_bad_input_raises_a_clear_error(tmp_path, benchmark, content, message):
    path = tmp_path / "p.x"
    path.write_text(content)
    with pytest.raises(ScoreError, match=message):
        score_file(benchmark, path)


def test_missing_file(tmp_path):
    with pytest.raises(ScoreError, match="no such prediction file"):
        score_file("mmau", tmp_path / "absent.json")


def assert_groups_sum_to_total(result, groups):
    for group in groups:
        assert [sum(t[0] for t in result[group].values()), sum(t[1] for t in result[group].values())] \
            == result["total"], group


@needs_bench
def test_real_mmau_test_mini(tmp_path):
    meta = json.loads(MMAU_FILE.read_text())
    for rec in meta:
        rec["model_output"] = rec["answer"]
    right = score_file("mmau", write_json(tmp_path / "answer.json", meta))
    # Every answer's words are complete and carry no wrong word: 1000/1000.
    assert right["total"] == [1000, 1000]
    assert {k: v[1] for k, v in right["task"].items()} == {"sound": 333, "music": 334, "speech": 333}
    assert {k: v[1] for k, v in right["difficulty"].items()} == {"easy": 224, "hard": 236, "medium": 540}
    assert len(right["sub-category"]) == 27
    assert_groups_sum_to_total(right, ["task", "difficulty", "sub-category"])

    for rec in meta:
        rec["model_output"] = rec["choices"][0]
    first = score_file("mmau", write_json(tmp_path / "first.json", meta))
    # 395 answers are choices[0]; 3 more are judged right because choices[0] has the same
    # word set as the answer (speech "Emotion State summarisation" items, e.g. 004fd9c5:
    # "first speaker shows surprise and joy, second speaker shows sadness." vs the answer
    # "first speaker shows sadness and joy, second speaker shows surprise and sadness.";
    # also 35330c05, 42e35733). 395 + 3 = 398.
    assert sum(rec["answer"] == rec["choices"][0] for rec in meta) == 395
    assert first["total"] == [398, 1000]
    assert_groups_sum_to_total(first, ["task", "difficulty", "sub-category"])


@needs_bench
def test_real_mmar_meta(tmp_path):
    meta = [json.loads(line) for line in MMAR_FILE.read_text().splitlines() if line.strip()]
    for rec in meta:
        rec["answer_prediction"] = rec["answer"]
    right = score_file("mmar", write_jsonl(tmp_path / "answer.jsonl", meta))
    assert right["total"] == [1000, 1000]
    assert {k: v[1] for k, v in right["modality"].items()} == {
        "sound": 165, "music": 206, "speech": 294, "mix-sound-music": 11, "mix-sound-speech": 218,
        "mix-music-speech": 82, "mix-sound-music-speech": 24,
    }
    assert {k: v[1] for k, v in right["category"].items()} == {
        "Signal Layer": 43, "Perception Layer": 404, "Semantic Layer": 412, "Cultural Layer": 141,
    }
    assert len(right["sub-category"]) == 16
    assert_groups_sum_to_total(right, ["modality", "category", "sub-category"])

    for rec in meta:
        rec["answer_prediction"] = rec["choices"][0]
    first = score_file("mmar", write_json(tmp_path / "first.json", meta))  # JSON list this time
    # 273 answers are choices[0]; 7 more share the answer's word set with choices[0]
    # ("From near to far" vs "From far to near", "Ratio is 3:1" vs "1:3", "parker hit eugene"
    # vs "eugene hit parker", reordered chords/languages...). 273 + 7 = 280.
    assert sum(rec["answer"] == rec["choices"][0] for rec in meta) == 273
    assert first["total"] == [280, 1000]
    assert_groups_sum_to_total(first, ["modality", "category", "sub-category"])


def test_cli_run_prints_table_and_writes_json(tmp_path, capsys):
    preds = write_json(tmp_path / "p.json", MMAU_RECORDS)
    out = tmp_path / "sub" / "scores.json"
    parser = argparse.ArgumentParser(prog="audiothinker")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["score", "--benchmark", "mmau", str(preds), "--json", str(out)])
    assert args.func is run
    assert run(args) == 0
    captured = capsys.readouterr()
    assert "total" in captured.out and "25.00%" in captured.out and "50.00%" in captured.out  # 1/4 total, 1/2 sound
    assert "(official)" in captured.out
    # Records 4 and 5 have no prediction: said on stderr, with the file and what became of them.
    assert f"warning: {preds}: 2 records have no 'model_output' prediction" in captured.err
    assert "skipped, as the official script does" in captured.err
    assert json.loads(out.read_text()) == score_file("mmau", preds)


def test_cli_extract_answer_flag(tmp_path, capsys):
    preds = write_json(tmp_path / "p.json", MMAU_RECORDS)
    parser = argparse.ArgumentParser(prog="audiothinker")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "scores.json"
    args = parser.parse_args(["score", "--benchmark", "mmau", str(preds), "--extract-answer", "--json", str(out)])
    assert run(args) == 0
    assert "(official, --extract-answer)" in capsys.readouterr().out
    assert json.loads(out.read_text())["total"] == [3, 4]  # as in test_mmau_extract_answer_reduces_first


def test_cli_file_without_predictions_is_an_error(tmp_path, capsys):
    meta = write_json(tmp_path / "meta.json", [mmau(0, "sound", "easy", "S")])
    for strict in (False, True):
        ns = argparse.Namespace(benchmark="mmau", predictions=str(meta), json=None, strict=strict)
        assert run(ns) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {meta}: none of its 1 records has a prediction") and "Traceback" not in err


def test_cli_warns_when_nothing_could_be_scored(tmp_path, capsys):
    preds = write_jsonl(tmp_path / "p.jsonl", [air(0, "T", "D", "<answer>B</answer>")])
    ns = argparse.Namespace(benchmark="airbench", predictions=str(preds), json=None, strict=False)
    assert run(ns) == 0
    assert f"warning: {preds}: no prediction could be scored" in capsys.readouterr().err


def test_cli_airbench_reports_failures(tmp_path, capsys):
    preds = write_jsonl(tmp_path / "p.jsonl", AIR_RECORDS)
    ns = argparse.Namespace(benchmark="airbench", predictions=str(preds), json=None, strict=True)
    assert run(ns) == 0
    assert "fail): 5 (counted wrong)" in capsys.readouterr().out


def test_cli_bad_input_returns_1(tmp_path, capsys):
    ns = argparse.Namespace(benchmark="mmau", predictions=str(tmp_path / "nope.json"), json=None, strict=False)
    assert run(ns) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope.json" in err


def test_table_names_are_not_rich_markup(capsys):
    r = score_records("mmau", [mmau(0, "sound", "easy", "[bold]x[/bold]", model_output="dog")])
    from audiothinker.eval.score import result_table
    from rich.console import Console

    Console(width=120).print(result_table(r))
    assert "[bold]x[/bold]" in capsys.readouterr().out
