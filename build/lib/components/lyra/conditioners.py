"""What a piece is conditioned on, as one object, and how each condition enters the transformer.

audiocraft's split (modules/conditioners.py): the batch's attribute values, one conditioner per
attribute (the ConditioningProvider), and a fuser that says how each conditioner's output enters
the model. Here:

    Conditions(text [B, 384], seconds_start [B], seconds_total [B], reference [B, K, R] codes or None,
               dropped={"text": [B] bool, "reference": [B] bool})
        --TextConditioner-->      prefix [B, n_text, d]   (the learned null text where dropped)
                                  step bias [B, d]        (zero where dropped; text_every_step only)
        --ReferenceConditioner--> prefix [B, n_ref, d]    (reference.py: a few seconds of a reference song
                                  step bias [B, d]         through a ~5 Hz residual-VQ bottleneck; models
                                                           without one have no reference tokens at all)
        --TimingConditioner-->    prefix [B, 3, d]        (seconds_start, seconds_total, remaining)
        --fuse-->  prefix [ text_1 .. text_n | ref_1 .. ref_m | start | total | remaining ]  prepended
                   step bias                                          summed into every code step

Training, sampling and scoring pass one `Conditions` through; a new condition (a reference song)
is a field here, a conditioner in the provider and a line in the fuser, not a new positional
argument at every call site. Dropping a condition (classifier-free guidance, per-condition dropout
in training) marks it in `dropped`; its conditioner substitutes its learned null.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn as nn
from einops import rearrange

DROPPABLE = ("text", "reference")   # timing is never dropped: a piece always has a requested length


@dataclasses.dataclass
class Conditions:
    """A batch of conditions; every tensor's first dimension is the batch."""

    text: torch.Tensor                          # [B, text_dim] sentence embeddings
    seconds_start: torch.Tensor                 # [B] where (the first frame of) the window sits in its piece
    seconds_total: torch.Tensor                 # [B] the piece's length
    dropped: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)   # name -> [B] bool
    reference: torch.Tensor | None = None       # [B, K, R] codec codes of a reference excerpt (None: no reference)

    def __post_init__(self):
        unknown = set(self.dropped) - set(DROPPABLE)
        if unknown:
            raise ValueError(f"conditions {sorted(unknown)} cannot be dropped (droppable: {DROPPABLE})")

    @classmethod
    def build(cls, text, seconds_total, seconds_start=0.0, device=None) -> "Conditions":
        """From array-likes or numbers (a number is broadcast over the batch), as float32 tensors."""
        text = torch.as_tensor(np.asarray(text, dtype=np.float32) if not torch.is_tensor(text) else text,
                               dtype=torch.float32, device=device)
        B = text.shape[0]

        def per_row(value):
            t = torch.as_tensor(value, dtype=torch.float32, device=text.device)
            return t.expand(B).clone() if t.dim() == 0 else t

        return cls(text=text, seconds_start=per_row(seconds_start), seconds_total=per_row(seconds_total))

    @property
    def batch_size(self) -> int:
        return self.text.shape[0]

    def _map(self, fn) -> "Conditions":
        return Conditions(text=fn(self.text), seconds_start=fn(self.seconds_start), seconds_total=fn(self.seconds_total),
                          dropped={k: fn(v) for k, v in self.dropped.items()},
                          reference=None if self.reference is None else fn(self.reference))

    def with_reference(self, reference: torch.Tensor) -> "Conditions":
        """A copy conditioned on reference codes [B, K, R] (one excerpt per row)."""
        reference = torch.as_tensor(reference, dtype=torch.long, device=self.text.device)
        if reference.dim() != 3 or reference.shape[0] != self.batch_size:
            raise ValueError(f"reference codes must be [B={self.batch_size}, K, R], got {tuple(reference.shape)}")
        return dataclasses.replace(self, reference=reference)

    def to(self, device) -> "Conditions":
        return self._map(lambda t: t.to(device))

    def __getitem__(self, rows) -> "Conditions":
        return self._map(lambda t: t[rows])

    def repeat_interleave(self, n: int) -> "Conditions":
        """Each row n times in a row (n generations per prompt)."""
        return self._map(lambda t: t.repeat_interleave(n, dim=0))

    @staticmethod
    def cat(parts: list["Conditions"]) -> "Conditions":
        names = set().union(*(p.dropped for p in parts))
        with_reference = [p.reference is not None for p in parts]
        if any(with_reference) and not all(with_reference):
            raise ValueError("cannot concatenate conditions with and without a reference (drop it instead)")

        def dropped(p, name):
            return p.dropped.get(name, torch.zeros(p.batch_size, dtype=torch.bool, device=p.text.device))

        return Conditions(text=torch.cat([p.text for p in parts]),
                          seconds_start=torch.cat([p.seconds_start for p in parts]),
                          seconds_total=torch.cat([p.seconds_total for p in parts]),
                          dropped={n: torch.cat([dropped(p, n) for p in parts]) for n in sorted(names)},
                          reference=torch.cat([p.reference for p in parts]) if all(with_reference) else None)

    def with_start(self, seconds_start: torch.Tensor) -> "Conditions":
        return dataclasses.replace(self, seconds_start=seconds_start)

    def drop(self, name: str, where: torch.Tensor | bool = True) -> "Conditions":
        """A copy with condition `name` dropped in the rows `where` ([B] bool, or all rows)."""
        where = torch.as_tensor(where, dtype=torch.bool, device=self.text.device).expand(self.batch_size)
        if name in self.dropped:
            where = where | self.dropped[name]
        return dataclasses.replace(self, dropped={**self.dropped, name: where.clone()})

    def unconditional(self) -> "Conditions":
        """Every droppable condition dropped: the unconditional model of classifier-free guidance."""
        out = self
        for name in DROPPABLE:
            out = out.drop(name)
        return out

    def is_unconditional(self) -> bool:
        return all(not self.has(name) for name in DROPPABLE)

    def has(self, name: str) -> bool:
        """Is condition `name` present (given and not dropped) in any row?"""
        if name == "reference" and self.reference is None:
            return False
        return not (name in self.dropped and bool(self.dropped[name].all()))

    def dropped_rows(self, name: str) -> torch.Tensor | None:
        return self.dropped.get(name)


@dataclasses.dataclass(frozen=True)
class ConditionDropout:
    """Per-condition dropout for training: each droppable condition dropped with its own probability
    (one network is then also the model without that condition, as classifier-free guidance needs)."""

    p: dict[str, float]

    def __post_init__(self):
        for name, p in self.p.items():
            if name not in DROPPABLE:
                raise ValueError(f"condition {name!r} cannot be dropped (droppable: {DROPPABLE})")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"dropout of {name!r} must be in [0, 1], got {p}")

    def draw(self, rng: np.random.Generator) -> dict[str, bool]:
        """One example's drops, drawn from `rng` in the fixed order of DROPPABLE."""
        return {name: bool(rng.random() < self.p[name]) for name in DROPPABLE if name in self.p}


# ------------------------------------------------------------------------------ conditioners
class TimingEmbedding(nn.Module):
    """A number of seconds -> one token: fixed sinusoids at log-spaced periods + a small MLP.

    Stable Audio conditions on seconds_start / seconds_total the same way (Fourier features of the
    number). Periods span two frames to twice the longest piece, so both "the piece ends in 3
    frames" and "we are 4 minutes in" are representable.
    """

    def __init__(self, config):
        super().__init__()
        n = config.n_timing_freqs
        lo, hi = math.log(2.0 / config.frame_rate), math.log(2.0 * config.max_seconds)
        periods = [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        self.omega = [2 * math.pi / p for p in periods]   # a constant, kept out of state dicts and dtype casts
        self.max_seconds = config.max_seconds
        self.mlp = nn.Sequential(nn.Linear(2 * n + 1, config.hidden_size), nn.SiLU(),
                                 nn.Linear(config.hidden_size, config.hidden_size))

    def forward(self, seconds: torch.Tensor) -> torch.Tensor:
        """[B] seconds -> [B, hidden]"""
        omega = torch.tensor(self.omega, device=seconds.device, dtype=torch.float32)
        angles = seconds[:, None].float() * omega[None, :]
        features = torch.cat([seconds[:, None].float() / self.max_seconds, angles.sin(), angles.cos()], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class TimingConditioner(nn.Module):
    """seconds_start, seconds_total and their difference (where the piece ends) -> 3 prefix tokens."""

    n_tokens = 3

    def __init__(self, config):
        super().__init__()
        self.start = TimingEmbedding(config)
        self.total = TimingEmbedding(config)
        self.remaining = TimingEmbedding(config)

    def forward(self, c: Conditions) -> tuple[torch.Tensor, None]:
        tokens = torch.stack([self.start(c.seconds_start), self.total(c.seconds_total),
                              self.remaining((c.seconds_total - c.seconds_start).clamp_min(0))], dim=1)
        return tokens, None


class TextConditioner(nn.Module):
    """The sentence embedding -> n prefix tokens, and (text_every_step) a bias on every code step.

    A dropped text gets the learned null prefix and no step bias (zero): attention to the prefix
    alone was not learnt on the tiny corpus, while a per-step bias (a global condition, as
    WaveNet's) reaches the output through the residual stream directly.
    """

    def __init__(self, config):
        super().__init__()
        self.n_tokens, self.dim = config.n_text_tokens, config.hidden_size
        self.tokens = nn.Linear(config.text_dim, config.n_text_tokens * config.hidden_size)
        self.null_text = nn.Parameter(torch.zeros(config.n_text_tokens, config.hidden_size))
        self.step = nn.Linear(config.text_dim, config.hidden_size) if config.text_every_step else None

    def forward(self, c: Conditions) -> tuple[torch.Tensor, torch.Tensor | None]:
        drop = c.dropped_rows("text")
        tokens = rearrange(self.tokens(c.text.to(self.tokens.weight.dtype)), "b (n d) -> b n d", n=self.n_tokens)
        if drop is not None:
            tokens = torch.where(drop[:, None, None], self.null_text.to(tokens.dtype)[None], tokens)
        if self.step is None:
            return tokens, None
        bias = self.step(c.text.to(self.step.weight.dtype))
        if drop is not None:
            bias = bias.masked_fill(drop[:, None], 0.0)
        return tokens, bias


@dataclasses.dataclass
class Fused:
    prefix: torch.Tensor                # [B, P, d] prepended to the code steps
    step_bias: torch.Tensor | None      # [B, d] added to every code step's input


class ConditioningProvider(nn.Module):
    """Runs every conditioner and fuses their outputs: prefix tokens in a fixed order, step biases summed."""

    PREPEND = ("text", "reference", "timing")        # the order of the prefix (absent conditioners skipped)

    def __init__(self, config):
        super().__init__()
        self.text = TextConditioner(config)
        self.timing = TimingConditioner(config)
        if getattr(config, "reference_tokens", 0):           # only models fine-tuned with a reference have one
            from components.lyra.reference import ReferenceConditioner

            self.reference = ReferenceConditioner(config)
        else:
            self.reference = None

    def present(self) -> list[str]:
        return [name for name in self.PREPEND if getattr(self, name, None) is not None]

    @property
    def n_prefix(self) -> int:
        return sum(getattr(self, name).n_tokens for name in self.present())

    def forward(self, conditions: Conditions, dtype: torch.dtype) -> Fused:
        if self.reference is None and conditions.has("reference"):
            raise ValueError("this model has no reference conditioner: fine-tune one with `lyra influence train`")
        prefix, bias = [], None
        for name in self.present():
            tokens, step = getattr(self, name)(conditions)
            prefix.append(tokens)
            if step is not None:
                bias = step if bias is None else bias + step
        dtype = dtype or prefix[0].dtype
        return Fused(prefix=torch.cat([p.to(prefix[0].dtype) for p in prefix], dim=1).to(dtype),
                     step_bias=None if bias is None else bias.to(dtype))
