"""Process-group helpers on top of accelerate: collectives (sums, gathers) and generation-ready weights.

No collective of our own: everything goes through accelerate (DDP/FSDP/DeepSpeed). The math on
the reduced values (advantage scales, the DAPO normaliser) is in algos/.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from audiothinker.config import Config


@dataclass
class Dist:
    accelerator: object

    @classmethod
    def create(cls, cfg: Config) -> "Dist":
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        trackers = [t for t in cfg.log.report_to if t != "jsonl"]
        acc = Accelerator(
            gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
            log_with=trackers or None,
            project_dir=cfg.output_dir,
        )
        set_seed(cfg.seed, device_specific=True)  # each process samples differently, reproducibly
        return cls(acc)

    def _sum(self, values: list[float]) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.reduce(t, reduction="sum") if self.accelerator.num_processes > 1 else t

    def global_fraction(self, flags: list[bool]) -> float:
        """lambda: share of True over the global batch (all processes)."""
        total, count = self._sum([float(sum(flags)), float(len(flags))]).tolist()
        return total / count if count else 0.0

    def global_mean(self, values: list[float]) -> float:
        """Mean over the global batch (0 if empty everywhere)."""
        total, count = self._sum([float(sum(values)), float(len(values))]).tolist()
        return total / count if count else 0.0

    def global_sum(self, value: float) -> float:
        """`value` summed over all processes."""
        return float(self._sum([value]))

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """[N] per process -> [world * N], every process's values in rank order (itself when alone)."""
        return self.accelerator.gather(values) if self.accelerator.num_processes > 1 else values

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes


@contextmanager
def unwrap_for_generation(accelerator, scorer: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The bare HF model, with full weights available for `generate` under ZeRO-3 / FSDP."""
    unwrapped = accelerator.unwrap_model(scorer)
    ds = getattr(accelerator.state, "deepspeed_plugin", None)
    if ds is not None and ds.zero_stage == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(scorer.parameters()), modifier_rank=None):
            yield unwrapped.model
        return
    if getattr(accelerator.state, "fsdp_plugin", None) is not None and accelerator.is_fsdp2 is False:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        with FSDP.summon_full_params(scorer, writeback=False, recurse=True):
            yield unwrapped.model
        return
    yield unwrapped.model
