"""The Lyra transformer: a decoder-only LM over K codec codebooks (MusicGen's delay pattern).

One position per delayed step (see delay.py): the K codes of a step are embedded and summed,
and K heads predict the K codes of the next step in one matmul. The sequence starts with a
conditioning prefix:

    [ text_1 .. text_n | start | total | remaining | BOS | step_1 | step_2 | ... ]
      ^ the 384-d sentence  ^ timing (Stable Audio):     ^ codes, delay pattern (+ the
        embedding, projected  seconds_start, seconds_total  text's step bias on each when
        to n tokens           and their difference          text_every_step)
                              (where the piece ends)

With `text_every_step` a second projection of the text is added to the input of every code step
(a global condition, as WaveNet's): attention to the prefix alone was not learnt on the tiny corpus
(the codes were as likely under another clip's caption, 0.002 nats apart, and no likelier than
without text), while a per-step bias reaches the output through the residual stream directly.

Text is dropped (a learned "null" prefix) for a share of training windows, so one network is
both the conditional and the unconditional model of classifier-free guidance.

Ids: codebook k uses 0..V-1 for codes, V = END (the frame after a piece's last one) and
V+1 = SPECIAL (delay-pattern padding and BOS; never predicted). The heads predict V+1 classes.

Wrapped as a Hugging Face `PreTrainedModel` so `save_pretrained` / `from_pretrained`, PEFT and TRL
can use it; the attention projections are the modules named `qkv` and `proj` (LoRA targets), the
MLP's are `fc_in` / `fc_out`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput


class LyraConfig(PreTrainedConfig):
    """Architecture + codec facts: everything needed to rebuild the network from config.json."""

    model_type = "lyra"

    num_codebooks: int = 4          # K
    codebook_size: int = 1024       # V
    frame_rate: float = 50.0        # codec frames per second
    sample_rate: int = 24_000       # of the codec's audio (recorded for generation)
    text_dim: int = 384             # sentence-embedding width (all-MiniLM-L6-v2)
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    mlp_ratio: int = 4
    n_text_tokens: int = 2
    text_every_step: bool = False   # add the text's step bias to every code step (False: models saved before it)
    window_frames: int = 128        # training context, in frames
    max_seconds: float = 600.0
    dropout: float = 0.0
    rope_theta: float = 10_000.0
    n_timing_freqs: int = 16        # sinusoids per timing number

    @property
    def end_id(self) -> int:
        return self.codebook_size

    @property
    def special_id(self) -> int:
        return self.codebook_size + 1

    @property
    def input_vocab(self) -> int:
        return self.codebook_size + 2

    @property
    def output_vocab(self) -> int:
        return self.codebook_size + 1

    @property
    def prefix_len(self) -> int:
        return self.n_text_tokens + 3

    @property
    def window_steps(self) -> int:
        """Delayed steps of a full window: its frames (an END counts as one) + K-1 steps of delay."""
        return self.window_frames + self.num_codebooks - 1

    @property
    def max_positions(self) -> int:
        return self.prefix_len + self.window_steps

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# ---------------------------------------------------------------------------------------- cache
class KVCache:
    """Preallocated keys/values of every layer, filled left to right:

        kv [L, 2, B, H, max_len, head_dim]    k = kv[:, 0], v = kv[:, 1]  (views)

    Generation writes one position per step into the next free slot; nothing is reallocated.
    Keys and values of a layer sit side by side so a decoding step stores both in one copy
    (`layers[l]` is layer l's [2, B, H, max_len, head_dim] slab).
    """

    def __init__(self, config: LyraConfig, batch: int, max_len: int, device=None, dtype=torch.float32):
        shape = (config.num_hidden_layers, 2, batch, config.num_attention_heads, max_len, config.head_dim)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)
        self.k, self.v = self.kv[:, 0], self.kv[:, 1]
        self.layers = list(self.kv.unbind(0))
        self.length = 0           # positions filled so far
        self.step_bias: torch.Tensor | None = None   # [B, d] the text's per-step bias, set by the prefill
        self.max_len = max_len

    def reset(self) -> None:
        self.length = 0


# ------------------------------------------------------------------------------------- modules
class RotaryEmbedding(nn.Module):
    """Rotary positions (RoFormer), pairs interleaved: (x0, x1) rotate together, as a complex product.

    The table is built lazily (and regrown on demand), so loading on the meta device works."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        self._table: torch.Tensor | None = None          # complex64 [n_positions, head_dim / 2]

    def forward(self, start: int, length: int, device) -> torch.Tensor:
        """e^(i * position * frequency) for positions start..start+length: [length, head_dim / 2]."""
        end = start + length
        table = self._table
        if table is None or table.shape[0] < end or table.device != device:
            n = max(end, 1024 if table is None else 2 * table.shape[0])
            with torch.inference_mode(False), torch.no_grad():   # a plain tensor, usable by training too
                inv_freq = 1.0 / self.theta ** (torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim)
                angles = torch.outer(torch.arange(n, device=device, dtype=torch.float32), inv_freq)
                table = self._table = torch.polar(torch.ones_like(angles), angles)
        return table[start:end]


def apply_rotary(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """x [..., head_dim] times `rotation` [..., head_dim / 2] (complex, broadcast), pairs as complex numbers."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rotation).flatten(-2).type_as(x)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """Causal SDPA over [B, H, T, hd]. bf16 on CPU (autocast) runs in fp32: PyTorch's bf16 CPU
    flash-attention kernel is slower than its fp32 one (~15 % of a training step)."""
    if q.dtype == torch.bfloat16 and q.device.type == "cpu":
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                  dropout_p=dropout_p).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)


class Attention(nn.Module):
    def __init__(self, config: LyraConfig):
        super().__init__()
        self.n_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, rotation, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, _ = x.shape
        qkv = rearrange(self.qkv(x), "b t (three h d) -> b t three h d", three=3, h=self.n_heads)
        qk = apply_rotary(qkv[:, :, :2], rotation[:, None, None])           # q and k rotated in one go
        q, k, v = (t.transpose(1, 2) for t in (qk[:, :, 0], qk[:, :, 1], qkv[:, :, 2]))   # [B, H, T, hd]
        if cache is None:
            y = causal_attention(q, k, v, self.dropout if self.training else 0.0)
        else:
            start = cache.length
            end = start + T
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            k, v = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]
            if T == 1:          # one new position sees everything before it: no mask at all
                y = F.scaled_dot_product_attention(q, k, v)
            elif start == 0:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:               # a chunk appended to a filled cache: causal within the chunk
                allowed = torch.arange(end, device=x.device)[None, :] <= torch.arange(start, end, device=x.device)[:, None]
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.resid_dropout(self.proj(rearrange(y, "b h t d -> b t (h d)")))


class MLP(nn.Module):
    def __init__(self, config: LyraConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.mlp_ratio * config.hidden_size, bias=False)
        self.fc_out = nn.Linear(config.mlp_ratio * config.hidden_size, config.hidden_size, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.fc_out(F.gelu(self.fc_in(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: LyraConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, bias=False)     # (3 us a call on CPU; RMSNorm's takes 11)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, bias=False)
        self.mlp = MLP(config)

    def forward(self, x, rotation, cache, layer):
        x = x + self.attn(self.norm1(x), rotation, cache, layer)
        return x + self.mlp(self.norm2(x))


class TimingEmbedding(nn.Module):
    """A number of seconds -> one token: fixed sinusoids at log-spaced periods + a small MLP.

    Stable Audio conditions on seconds_start / seconds_total the same way (Fourier features of the
    number). Periods span two frames to twice the longest piece, so both "the piece ends in 3
    frames" and "we are 4 minutes in" are representable.
    """

    def __init__(self, config: LyraConfig):
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


class ConditionPrefix(nn.Module):
    """Text embedding + timing -> the prefix tokens [B, n_text_tokens + 3, hidden]."""

    def __init__(self, config: LyraConfig):
        super().__init__()
        self.n_text, self.dim = config.n_text_tokens, config.hidden_size
        self.text_proj = nn.Linear(config.text_dim, config.n_text_tokens * config.hidden_size)
        self.null_text = nn.Parameter(torch.zeros(config.n_text_tokens, config.hidden_size))
        # the text's bias on every code step; a dropped text gets none (zero), like the null prefix
        self.text_step = nn.Linear(config.text_dim, config.hidden_size) if config.text_every_step else None
        self.start = TimingEmbedding(config)
        self.total = TimingEmbedding(config)
        self.remaining = TimingEmbedding(config)

    def forward(self, text_embedding, seconds_start, seconds_total, drop_text=None) -> torch.Tensor:
        text = rearrange(self.text_proj(text_embedding.to(self.text_proj.weight.dtype)), "b (n d) -> b n d", n=self.n_text)
        if drop_text is not None:
            text = torch.where(drop_text[:, None, None], self.null_text.to(text.dtype)[None], text)
        timing = torch.stack([self.start(seconds_start), self.total(seconds_total),
                              self.remaining((seconds_total - seconds_start).clamp_min(0))], dim=1)
        return torch.cat([text, timing.to(text.dtype)], dim=1)

    def step_bias(self, text_embedding, drop_text=None) -> torch.Tensor | None:
        """[B, text_dim] -> [B, hidden] added to every code step's input (None without text_every_step)."""
        if self.text_step is None:
            return None
        bias = self.text_step(text_embedding.to(self.text_step.weight.dtype))
        if drop_text is not None:
            bias = bias.masked_fill(drop_text[:, None], 0.0)
        return bias


# --------------------------------------------------------------------------------------- model
@dataclasses.dataclass
class LyraOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None          # [B, K, S, V+1]


class LyraForMusicGeneration(PreTrainedModel):
    config_class = LyraConfig
    base_model_prefix = "lyra"
    main_input_name = "codes"
    _no_split_modules = ["Block"]
    _supports_sdpa = True

    def __init__(self, config: LyraConfig):
        super().__init__(config)
        d = config.hidden_size
        self.condition = ConditionPrefix(config)
        self.codes_embed = nn.Embedding(config.num_codebooks * config.input_vocab, d)   # K tables, stacked
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta)
        self._offsets: torch.Tensor | None = None     # [K, 1]: codebook k's ids start at k * (V+2)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(d, bias=False)
        self.heads = nn.Linear(d, config.num_codebooks * config.output_vocab, bias=False)   # K heads, one matmul
        self.post_init()

    def _init_weights(self, module):
        # GPT-2: N(0, 0.02); projections into the residual stream scaled by 1/sqrt(2 * layers)
        std = 0.02
        if isinstance(module, nn.Linear):
            if getattr(module, "_is_residual_proj", False):
                std = 0.02 / math.sqrt(2 * self.config.num_hidden_layers)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
        elif isinstance(module, ConditionPrefix):
            nn.init.zeros_(module.null_text)

    def post_init(self):
        for block in self.blocks:
            block.attn.proj._is_residual_proj = True
            block.mlp.fc_out._is_residual_proj = True
        super().post_init()

    def get_input_embeddings(self):
        return self.codes_embed

    def num_parameters_without_embeddings(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("codes_embed"))

    # -- pieces of the forward pass, also used by the sampler
    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, K, S] ids -> [B, S, d]: the K codebook embeddings of each step, summed (one gather)."""
        B, K, S = codes.shape
        offsets = self._offsets
        if offsets is None or offsets.device != codes.device:
            with torch.inference_mode(False):
                offsets = self._offsets = torch.arange(K, device=codes.device)[:, None] * self.config.input_vocab
        ids = rearrange(codes + offsets, "b k s -> (b s) k")
        summed = F.embedding_bag(ids, self.codes_embed.weight, mode="sum")
        return summed.view(B, S, -1)

    def prefix(self, text_embedding, seconds_start, seconds_total, drop_text=None) -> torch.Tensor:
        return self.condition(text_embedding, seconds_start, seconds_total, drop_text).to(self.codes_embed.weight.dtype)

    def transformer(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """[B, T, d] embeddings -> [B, T, K * (V+1)] logits, attending to the cache if given."""
        start = 0 if cache is None else cache.length
        rotation = self.rotary(start, x.shape[1], x.device)
        for layer, block in enumerate(self.blocks):
            x = block(x, rotation, cache, layer)
        if cache is not None:
            cache.length += x.shape[1]
        return self.heads(self.norm(x))

    def forward(
        self,
        codes: torch.Tensor,
        text_embedding: torch.Tensor | None = None,
        seconds_start: torch.Tensor | None = None,
        seconds_total: torch.Tensor | None = None,
        drop_text: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: KVCache | None = None,
        **kwargs,
    ) -> LyraOutput:
        """codes [B, K, S]: inputs (delayed targets shifted right, see delay.shift_right);
        text_embedding [B, text_dim]; seconds_* [B]; drop_text [B] bool (use the null text);
        labels [B, K, S]: delayed targets, -100 where ignored.
        With a cache that already holds the prefix, the conditioning arguments are not needed.

        Returns logits [B, K, S, V+1] (the prefix positions are not scored) and the mean
        cross-entropy over labelled positions.
        """
        B, K, S = codes.shape
        x = self.embed_codes(codes)
        n_prefix = 0
        if cache is None or cache.length == 0:
            if text_embedding is None or seconds_start is None or seconds_total is None:
                raise ValueError("the first forward pass needs text_embedding, seconds_start and seconds_total")
            bias = self.condition.step_bias(text_embedding, drop_text)
            if cache is not None:
                cache.step_bias = None if bias is None else bias.to(x.dtype)
            if bias is not None:
                x = x + bias[:, None].to(x.dtype)
            x = torch.cat([self.prefix(text_embedding, seconds_start, seconds_total, drop_text), x], dim=1)
            n_prefix = self.config.prefix_len
        elif cache.step_bias is not None:
            x = x + cache.step_bias[:, None]
        logits = self.transformer(x, cache)[:, n_prefix:]
        logits = rearrange(logits, "b s (k v) -> b s k v", k=K)
        loss = None
        if labels is not None:
            targets = rearrange(labels, "b k s -> b s k")
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return LyraOutput(loss=loss, logits=rearrange(logits, "b s k v -> b k s v"))

    # -- accounting (nanoGPT)
    def flops_per_position(self, seq_len: int) -> float:
        """Training FLOPs per sequence position: 6 N (matmuls fwd + bwd) + 12 L H Q T (attention)."""
        cfg = self.config
        N = self.num_parameters_without_embeddings()
        return 6 * N + 12 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * seq_len


def build_model(model_config, *, num_codebooks: int, codebook_size: int, frame_rate: float,
                sample_rate: int, text_dim: int) -> LyraForMusicGeneration:
    """A fresh model from the `lm.model` params section and the token dataset's codec facts."""
    config = LyraConfig(
        num_codebooks=num_codebooks, codebook_size=codebook_size, frame_rate=float(frame_rate),
        sample_rate=int(sample_rate), text_dim=text_dim,
        hidden_size=model_config.dim, num_hidden_layers=model_config.n_layers,
        num_attention_heads=model_config.n_heads, mlp_ratio=model_config.mlp_ratio,
        n_text_tokens=model_config.n_text_tokens, window_frames=model_config.window_frames,
        max_seconds=model_config.max_seconds, dropout=model_config.dropout, rope_theta=model_config.rope_theta,
        text_every_step=model_config.text_every_step,
    )
    return LyraForMusicGeneration(config)
