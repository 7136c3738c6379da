"""Per-token log-probabilities without materialising a full [N, T, V] log-softmax."""

from __future__ import annotations

import torch


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor, chunk: int = 4) -> torch.Tensor:
    """log softmax(logits)[..., index] for logits [N, T, V] and index [N, T] -> [N, T].

    Rows are processed `chunk` at a time: log_softmax over a 150k vocabulary for every
    completion token at once is the largest tensor of a GRPO step.
    """
    out = []
    for rows, ids in zip(logits.split(chunk), index.split(chunk)):
        picked = rows.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # [n, T]
        if rows.dtype in (torch.float32, torch.float64):
            out.append(picked - torch.logsumexp(rows, dim=-1))
        else:  # bf16/fp16: logsumexp in low precision is inaccurate
            out.append(rows.float().log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1))
    return torch.cat(out)
