"""Loaders per format on small files, the real MMAU/MMAR metadata, and every bad-input case."""

import json
from pathlib import Path

import pytest

from audiothinker.data import FORMATS, AudioQA, DataError, load_records, missing_audio
from audiothinker.data.loaders import video_to_audio

BENCH = Path("/work/shared/benchmarks")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def generic(i: int, **over) -> dict:
    row = {"id": f"q{i}", "audio": f"wav/{i}.wav", "question": "High or low?", "choices": ["high", "low"]}
    row["answer"] = "low"
    return {**row, **over}


def test_generic_jsonl_resolves_paths_and_keeps_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        generic(0, difficulty="easy", task="pitch", sampling_rate=16000, metadata={"reasoning": "r"}, source="x"),
        "",  # blank lines are not records
        generic(1, audio="/abs/1.wav"),
    ])
    res = load_records(path, "jsonl")
    assert [r.id for r in res.records] == ["q0", "q1"] and res.skipped == []
    r0 = res.records[0]
    assert r0.audio == str(tmp_path / "wav/0.wav") and r0.difficulty == "easy" and r0.sampling_rate == 16000
    assert r0.metadata == {"reasoning": "r", "source": "x"}
    assert res.records[1].audio == "/abs/1.wav"
    assert load_records(path, "jsonl", audio_root="/data").records[0].audio == "/data/wav/0.wav"
    assert "2 records" in res.summary()


BAD_LINES = [
    ('{"id": "q9", "audio": ', "malformed JSON line"),
    (json.dumps({k: v for k, v in generic(9).items() if k != "question"}), "missing field 'question'"),
    (json.dumps(generic(9, answer="medium")), "answer 'medium' is not among the choices"),
    (json.dumps(generic(9, question="  ")), "empty question"),
    (json.dumps(generic(0)), "duplicate id 'q0' \\(first at .*d.jsonl:1\\)"),
    (json.dumps(generic(9, difficulty="extreme")), "difficulty 'extreme'"),
    (json.dumps(generic(9, choices=["only"], answer="only")), "at least two choices"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps(generic(9, id="")), "empty id"),
    (json.dumps(generic(9, choices="high, low")), "must be a list of options"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_bad_jsonl_line_raises_with_file_and_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "d.jsonl", [generic(0), generic(1), line, generic(3)])
    with pytest.raises(DataError, match=rf"d\.jsonl:3: .*{message}"):
        load_records(path, "jsonl")


def test_skip_counts_every_bad_record(tmp_path):
    rows = [generic(0), generic(1)] + [line for line, _ in BAD_LINES] + [generic(2)]
    res = load_records(write_jsonl(tmp_path / "d.jsonl", rows), "jsonl", on_error="skip")
    assert [r.id for r in res.records] == ["q0", "q1", "q2"]
    assert [where.rsplit(":", 1)[1] for where, _ in res.skipped] == [str(n) for n in range(3, 3 + len(BAD_LINES))]
    assert f"{len(BAD_LINES)} skipped" in res.summary()


def test_file_and_option_errors(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_records(tmp_path / "nope.jsonl", "jsonl")
    (tmp_path / "broken.json").write_text('[{"id": 1},\n  {oops}]')
    with pytest.raises(DataError, match=r"broken\.json:2: malformed JSON"):
        load_records(tmp_path / "broken.json", "mmau", on_error="skip")
    with pytest.raises(ValueError, match="valid: .*airbench.*mmau"):
        load_records(tmp_path / "broken.json", "csv")
    with pytest.raises(ValueError, match="on_error"):
        load_records(tmp_path / "broken.json", "mmau", on_error="ignore")


def test_avqa_index_answer_and_video_rewrite(tmp_path):
    row = {"id": 183, "video_name": "-HG3Omg_89c_000030",
           "question_text": "What happened in the video? Video shows it.",
           "multi_choice": ["motorboat", "Yacht consignment", "Sailboat set sail", "Consignment car"], "answer": 1,
           "question_type": "Happening", "dataset_name": "AVQA", "audio_path": "/avqa/-HG3Omg_89c_30.wav"}
    no_id = {k: v for k, v in row.items() if k != "id"}
    res = load_records(write_jsonl(tmp_path / "avqa.jsonl", [row, no_id]), "avqa")
    r = res.records[0]
    assert r.id == "183" and r.answer == "Yacht consignment" and r.audio == "/avqa/-HG3Omg_89c_30.wav"
    assert r.question == "What happened in the audio? Audio shows it."
    assert r.metadata["raw"] == row and r.metadata["video_name"] == "-HG3Omg_89c_000030"
    assert res.records[1].id == "avqa-1"
    assert video_to_audio("VIDEO videos Video") == "AUDIO audios Audio"
    bad = write_jsonl(tmp_path / "bad.jsonl", [row, {**row, "id": 2, "answer": 4}])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: answer index 4 is out of range"):
        load_records(bad, "avqa")


def test_real_mmau_metadata_loads_without_audio(tmp_path):
    res = load_records(BENCH / "mmau/mmau-test-mini.json", "mmau", audio_root=tmp_path)
    assert len(res.records) == 1000 and not res.skipped
    r = res.records[0]
    assert r.audio == str(tmp_path / "test-mini-audios" / f"{r.id}.wav")
    assert r.task in {"sound", "music", "speech"} and r.difficulty in {"easy", "medium", "hard"}
    assert r.metadata["sub_category"] and r.metadata["raw"]["audio_id"].startswith("./")
    assert len(missing_audio(res.records)) == 1000
    v1 = load_records(BENCH / "mmau/mmau-test-mini.v1_2025-03-25.json", "mmau")
    assert len(v1.records) == 1000
    assert {r.category for r in v1.records} == {"Reasoning", "Information Extraction"}  # list categories flattened


def test_real_mmar_metadata_loads_as_jsonl_and_json():
    res = load_records(BENCH / "mmar/MMAR-meta.jsonl", "mmar")
    assert len(res.records) == 1000 and not res.skipped
    assert all("" not in r.choices for r in res.records)  # padding options dropped
    modalities = {r.task for r in res.records}
    assert len(modalities) == 7 and {r.metadata["modality"] for r in res.records} == modalities
    assert res.records[0].audio.endswith("mmar/audio/qx8hrhBZJ98_00-01-32_00-02-02.wav")
    assert "rubric" in res.records[0].metadata["raw"]
    # The v1 file has answers that are not among the choices: an error, or skipped and counted.
    with pytest.raises(DataError, match=r"MMAR-meta\.v1_2025-05-11\.json record 43 \(id 'BV1NtQuYTELJ.*not among"):
        load_records(BENCH / "mmar/MMAR-meta.v1_2025-05-11.json", "mmar")
    v1 = load_records(BENCH / "mmar/MMAR-meta.v1_2025-05-11.json", "mmar", on_error="skip")
    assert len(v1.records) + len(v1.skipped) == 1000 and len(v1.skipped) == 5
    fixed = next(r for r in v1.records if r.id == "Txj3Qv1lJgs_00-00-00_00-00-16")
    assert fixed.answer == "2040" and "2040" in fixed.choices  # "2040 " vs "2040": whitespace only


def mmau_item(i: int, **over) -> dict:
    row = {"id": f"m{i}", "audio_id": f"./a/{i}.wav", "question": "Who speaks?", "choices": ["Man", "Woman"],
           "answer": "Man", "task": "speech", "category": "Reasoning", "sub-category": "Speaker", "difficulty": "easy"}
    return {**row, **over}


@pytest.mark.parametrize(
    "bad, message",
    [
        (mmau_item(1, answer="Child"), r"record 1 \(id 'm1'\): .*'Child' is not among"),
        (mmau_item(1, question=""), r"record 1 \(id 'm1'\): .*empty question"),
        (mmau_item(0), r"record 1 \(id 'm0'\): duplicate id 'm0'"),
        ({k: v for k, v in mmau_item(1).items() if k != "choices"}, r"record 1 \(id 'm1'\): missing field 'choices'"),
    ],
)
def test_json_list_errors_name_index_and_id(tmp_path, bad, message):
    path = tmp_path / "mmau.json"
    path.write_text(json.dumps([mmau_item(0), bad, mmau_item(2)]))
    with pytest.raises(DataError, match=message):
        load_records(path, "mmau")
    res = load_records(path, "mmau", on_error="skip")
    assert [r.id for r in res.records] == ["m0", "m2"] and len(res.skipped) == 1


def airbench_item(i: int, **over) -> dict:
    row = {"path": f"{i}.wav", "question": "What is the emotion?", "choice_a": "happy", "choice_b": "sad",
           "choice_c": "angry", "choice_d": "neutral", "answer_gt": "sad", "task_name": "Speech_emotion_recognition",
           "dataset_name": "IEMOCAP", "uniq_id": i}
    return {**row, **over}


def test_airbench_choices_paths_and_group(tmp_path):
    two = {k: v for k, v in airbench_item(2, answer_gt="yes", choice_a="yes", choice_b="no").items()
           if k not in ("choice_c", "choice_d")}
    grounding = airbench_item(3, choice_d=None, task_name="Audio_Grounding", dataset_name="AudioGrounding")
    items = [airbench_item(1), two, grounding]
    path = tmp_path / "Foundation_meta.json"
    path.write_text(json.dumps(items))
    recs = load_records(path, "airbench").records
    assert [r.id for r in recs] == ["1", "2", "3"]
    assert recs[0].choices == ["happy", "sad", "angry", "neutral"] and recs[0].answer == "sad"
    assert recs[0].audio == str(tmp_path / "Speech_emotion_recognition_IEMOCAP/1.wav")
    assert recs[0].metadata["group"] == "Speech_emotion_recognition_IEMOCAP"
    assert recs[1].choices == ["yes", "no"]
    assert recs[2].choices == ["happy", "sad", "angry"]
    assert recs[2].audio.endswith("Audio_Grounding_AudioGrounding/3.flac")  # the official script's quirk
    assert recs[0].metadata["raw"]["uniq_id"] == 1
    path.write_text(json.dumps([airbench_item(1, answer_gt="bored")]))
    with pytest.raises(DataError, match=r"record 0 \(id 1\): record '1' answer 'bored'"):
        load_records(path, "airbench")


def test_missing_audio_lists_only_absent_paths(tmp_path):
    (tmp_path / "here.wav").write_bytes(b"")
    recs = [
        AudioQA(id=n, audio=str(tmp_path / n), question="q", choices=["a", "b"], answer="a")
        for n in ("here.wav", "gone.wav")
    ]
    assert [r.id for r in missing_audio(recs)] == ["gone.wav"]


def test_every_format_is_registered():
    assert {"jsonl", "avqa", "mmau", "mmar", "airbench", "synthetic"} <= set(FORMATS)
