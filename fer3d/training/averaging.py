"""An exponential moving average of a model's weights (`train.ema`), validated and kept in place of
the raw weights: the average of the last ~1/(1 − decay) steps' weights generalises better than any
one of them while the learning rate is still high."""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """A copy of `model` whose weights and BatchNorm statistics follow the model's by
    avg ← d·avg + (1 − d)·current after every optimiser step, with d = min(decay, (1 + n)/(10 + n))
    at the n-th update so that the first steps' random weights fade fast (as timm's ModelEma)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay!r}")
        self.decay, self.updates = float(decay), 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, avg in self.model.state_dict().items():
            if avg.dtype.is_floating_point:
                avg.lerp_(current[name], 1 - d)
            else:  # counters such as BatchNorm's num_batches_tracked
                avg.copy_(current[name])

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, saved: dict) -> None:
        self.updates = int(saved["updates"])
        self.model.load_state_dict(saved["model"])
