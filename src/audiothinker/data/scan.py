"""Decode every clip of a record set once, before any model work, with a cache of the results.

Training (trainer/data.py: `load_training_records`) and evaluation both scan their records, so a
bad clip is named up front rather than met mid-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiothinker.data.records import AudioQA, DataError


def scan_audio(
    records: list[AudioQA], max_seconds: float | None, cache_path: Path | None, progress: bool = False
) -> dict[int, str]:
    """Decode every record's clip once; {id(record): problem} for the unusable ones.

    Results are cached by (path, size, mtime) in `cache_path`, so a resumed run does not decode
    again. Silent and near-empty clips are usable: they are counted in the audio report instead.
    """
    import json

    from audiothinker.data.audio import AudioStats, is_silent, load_audio

    cache: dict[str, Any] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except ValueError:
            cache = {}  # a cache cut short by a kill: decode again
    bad: dict[int, str] = {}
    files = [r for r in records if not hasattr(r.audio, "shape")]  # in-memory arrays were checked at load
    new = 0  # entries decoded now (the cache is written only then: other processes just read it)
    with _bar(progress and len(files) > 0, len(files), "scanning audio") as advance:
        for r in files:
            key = _file_key(r.audio, max_seconds)
            if key is None:
                bad[id(r)] = f"audio file not found: {r.audio}"
            elif key in cache:
                if cache[key].get("error"):
                    bad[id(r)] = cache[key]["error"]
            else:
                try:
                    wav = load_audio(r.audio, 16000, max_seconds=max_seconds, what=f"record {r.id!r} ({r.audio})",
                                     stats=AudioStats())
                    cache[key] = {"seconds": round(len(wav) / 16000, 3), "silent": is_silent(wav)}
                except DataError as e:
                    cache[key] = {"error": str(e)}
                    bad[id(r)] = str(e)
                new += 1
                if cache_path is not None and new % 2000 == 0:  # a kill mid-scan keeps most of the work
                    _write_json(cache_path, cache)
            advance(1)
    if cache_path is not None and new:
        _write_json(cache_path, cache)
    return bad


def _write_json(path: Path, obj: Any) -> None:
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)


def _file_key(path: str, max_seconds: float | None) -> str | None:
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{max_seconds}"


def _bar(enabled: bool, total: int, label: str):
    """A rich progress bar context yielding advance(n); a no-op when disabled."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if not enabled:
            yield lambda n: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as p:
            task = p.add_task(label, total=total)
            yield lambda n: p.advance(task, n)

    return bar()
