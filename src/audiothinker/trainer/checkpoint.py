"""Atomic, verified checkpoints through accelerate's save_state/load_state (DDP, FSDP and DeepSpeed aware).

Layout: OUTPUT_DIR/checkpoints/step-000010/ holds model weights (safetensors), optimizer,
scheduler, every process's RNG states and the registered PromptSampler (step, data position).
A checkpoint is written to a `.tmp` sibling and renamed when complete, so a crash mid-save never
leaves a checkpoint that `--resume` would pick up. Its last file, `manifest.json`, lists every
other file's size and sha256: `--resume` verifies it and falls back to the newest intact
checkpoint (a warning names what was wrong), so a truncated or bit-flipped file is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

_STEP_DIR = re.compile(r"^step-(\d+)$")
MANIFEST = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resumed from; the message names it and what is wrong."""


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and (p / "COMPLETE").exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(ckpt: Path) -> dict:
    """Record every file's size and sha256 in `ckpt/manifest.json` (written last, atomically)."""
    files = {
        p.relative_to(ckpt).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(ckpt.rglob("*")) if p.is_file() and p.name not in (MANIFEST, MANIFEST + ".tmp")
    }
    manifest = {"version": 1, "files": files}
    tmp = ckpt / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.rename(ckpt / MANIFEST)
    return manifest


def verify_checkpoint(ckpt: Path) -> str | None:
    """None if every file the manifest lists is there with its size and sha256; else what is wrong."""
    try:
        manifest = json.loads((ckpt / MANIFEST).read_text())
        files = manifest["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (written last: the save did not finish)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{MANIFEST} is unreadable ({type(e).__name__}: {e})"
    for name, want in files.items():
        p = ckpt / name
        if not p.is_file():
            return f"{name} is missing"
        size = p.stat().st_size
        if size != want["size"]:
            return f"{name} has {size} bytes, the manifest says {want['size']} (truncated or overwritten)"
        if _sha256(p) != want["sha256"]:
            return f"{name} does not match its sha256 in the manifest (corrupted)"
    return None


def save_checkpoint(accelerator, output_dir: str | Path, step: int, keep: int | None) -> Path:
    """Save the full training state for `step`; prune old checkpoints beyond `keep`."""
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "COMPLETE").write_text(str(step))
        write_manifest(tmp)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        if keep is not None:
            for _, old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def newest_intact_checkpoint(accelerator, output_dir: str | Path) -> Path | None:
    """The newest checkpoint that passes `verify_checkpoint` (checked on the main process, shared with
    all); a warning on stderr names each newer one skipped and why. None if there is no checkpoint;
    CheckpointError if there are some and none is intact."""
    from accelerate.utils import broadcast_object_list

    choice: list = [None, []]
    if accelerator.is_main_process:
        for _, ckpt in reversed(list_checkpoints(output_dir)):
            problem = verify_checkpoint(ckpt)
            if problem is None:
                choice[0] = str(ckpt)
                break
            choice[1].append(f"{ckpt.name}: {problem}")
            print(f"warning: checkpoint {ckpt} is damaged: {problem}; trying the previous one", file=sys.stderr)
    if accelerator.num_processes > 1:
        broadcast_object_list(choice)
    if choice[0] is None and choice[1]:
        raise CheckpointError(f"no intact checkpoint under {Path(output_dir) / 'checkpoints'} ({'; '.join(choice[1])})")
    return Path(choice[0]) if choice[0] else None


def load_checkpoint(accelerator, ckpt: Path) -> None:
    """accelerate's load_state, then a check that this process's RNG states were really restored
    (accelerate only logs a failure at info level, and the run would silently diverge)."""
    import torch
    from accelerate.utils import load
    from accelerate.utils.constants import RNG_STATE_NAME

    try:
        accelerator.load_state(str(ckpt))
    except Exception as e:  # noqa: BLE001 - any failure here names the checkpoint
        raise CheckpointError(f"{ckpt}: cannot load the training state: {type(e).__name__}: {e}") from e
    rng_file = ckpt / f"{RNG_STATE_NAME}_{accelerator.process_index}.pkl"
    try:
        states = load(rng_file)
        saved = states["torch_manual_seed"]
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{rng_file}: cannot load the random states ({type(e).__name__}: {e}); "
                              "resuming would not reproduce the run") from e
    if not torch.equal(torch.get_rng_state(), saved):
        raise CheckpointError(f"{rng_file}: the random states were not restored; resuming would not reproduce the run")
