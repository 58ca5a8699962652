"""The Lyra transformer: a decoder-only LM over K codec codebooks (MusicGen's delay pattern).

One position per delayed step (see delay.py): the K codes of a step are embedded and summed,
and K heads predict the K codes of the next step in one matmul. The sequence starts with a
conditioning prefix (conditioners.py turns a `Conditions` object into it):

    [ text_1 .. text_n | start | total | remaining | BOS | step_1 | step_2 | ... ]
      ^ the 384-d sentence  ^ timing (Stable Audio):     ^ codes, delay pattern (+ the
        embedding, projected  seconds_start, seconds_total  text's step bias on each when
        to n tokens           and their difference          text_every_step)
                              (where the piece ends)

Text is dropped (a learned "null" prefix) for a share of training windows, so one network is
both the conditional and the unconditional model of classifier-free guidance.

Ids: codebook k uses 0..V-1 for codes, V = END (the frame after a piece's last one) and
V+1 = SPECIAL (delay-pattern padding and BOS; never predicted). The heads predict V+1 classes.

The transformer step is written once (`transformer_step`), over a *weight format*: how a layer's
norms and matrices are applied. The model's own modules are one format (training, the prefill,
PEFT-wrapped layers: `Block` below); decoder.py adds two formats for one-position decoding steps
(the same weights transposed for row-vector matmuls, and weight-only int8).

Wrapped as a Hugging Face `PreTrainedModel`, registered with AutoConfig / AutoModel /
AutoModelForCausalLM, so `from_pretrained(path)` works through the Auto classes (TRL reloads its
reference model that way), and PEFT can wrap it: the attention projections are the modules named
`qkv` and `proj` (LoRA targets), the MLP's are `fc_in` / `fc_out`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from components.lyra.conditioners import Conditions, ConditioningProvider, TextConditioner

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
    # ---- the reference conditioner (reference.py); reference_tokens = 0: none (a text-to-music model)
    reference_tokens: int = 0       # prefix tokens of a reference excerpt (= reference_frames / reference_stride)
    reference_frames: int = 150     # codec frames of the excerpt (150 / 50 Hz = 3 s)
    reference_stride: int = 10      # frames per bottleneck token (50 Hz / 10 = 5 Hz)
    reference_latent_dim: int = 64  # the codec latent the codes are looked up in (frozen copy of the codec's RVQ)
    reference_width: int = 64       # the encoder's width
    reference_codebooks: int = 3    # residual VQ stages of the bottleneck
    reference_codebook_size: int = 64
    reference_codebook_dim: int = 8
    reference_quantizer: str = "rvq"  # "rvq" (EMA k-means residual VQ, OmniCodec's) or "fsq" (residual finite
    #                                   scalar quantisation: fixed grids, no codebook to collapse)

    @property
    def auto_map(self) -> dict:
        """No remote code: the Auto classes know Lyra by registration (TRL reads this when it re-creates
        a reference model by path)."""
        return {}

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
        return self.n_text_tokens + self.reference_tokens + 3

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


def attend(qkv: torch.Tensor, rotation: torch.Tensor, n_heads: int, cache: KVCache | None, layer: int,
           dropout_p: float) -> torch.Tensor:
    """Rotary self-attention over q, k, v packed as the qkv projection's output.

        qkv [B, T, 3 * H * hd] -> [B, T, H * hd]   positions appended to `cache` (if any)
        qkv [B, 3 * H * hd]    -> [B, H * hd]      one new position of a decoding step (cache needed)

    The one-position form is the inner loop of generation: q/k/v in fp32 (or the cache's dtype),
    rotated in place, the new key and value stored in one copy (KVCache keeps them side by side).
    """
    if qkv.dim() == 2:
        B, pos, kv = qkv.shape[0], cache.length, cache.layers[layer]
        hd = qkv.shape[-1] // (3 * n_heads)
        qkv = qkv.float().view(B, 3, n_heads, hd)
        pairs = torch.view_as_complex(qkv.view(B, 3, n_heads, hd // 2, 2))
        pairs[:, :2] *= rotation                                                 # rotate q and k
        kv.select(3, pos).copy_(qkv[:, 1:].transpose(0, 1))                      # [2, B, H, hd]
        q = qkv[:, 0, :, None].to(kv.dtype)                                      # [B, H, 1, hd]
        y = F.scaled_dot_product_attention(q, kv[0, :, :, :pos + 1], kv[1, :, :, :pos + 1])
        return y.view(B, n_heads * hd)
    B, T, _ = qkv.shape
    qkv = rearrange(qkv, "b t (three h d) -> b t three h d", three=3, h=n_heads)
    qk = apply_rotary(qkv[:, :, :2], rotation[:, None, None])           # q and k rotated in one go
    q, k, v = (t.transpose(1, 2) for t in (qk[:, :, 0], qk[:, :, 1], qkv[:, :, 2]))   # [B, H, T, hd]
    if cache is None:
        y = causal_attention(q, k, v, dropout_p)
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
            allowed = torch.arange(end, device=qkv.device)[None, :] <= torch.arange(start, end, device=qkv.device)[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return rearrange(y, "b h t d -> b t (h d)")


def transformer_step(layers, final, x: torch.Tensor, rotation: torch.Tensor, n_heads: int,
                     cache: KVCache | None = None) -> torch.Tensor:
    """The transformer, once for every weight format: embeddings -> logits of the K heads.

        x [B, T, d] (or [B, d]: one decoding step) -> [B, T, K * (V+1)] (or [B, K * (V+1)])

    per layer:  x = x + proj(attention(rotate(qkv(norm_attn(x)))))      (attention over the cache)
                x = x + fc_out(gelu(fc_in(norm_mlp(x))))
    then        logits = heads(norm(x))

    `layers` provide norm_attn, qkv, add_attn (x + proj(y)), norm_mlp, mlp_in (gelu(fc_in(h))),
    add_mlp (x + fc_out(h)) and attention_dropout; `final` maps the residual stream to logits.
    The caller advances the cache.
    """
    for layer, weights in enumerate(layers):
        y = attend(weights.qkv(weights.norm_attn(x)), rotation, n_heads, cache, layer, weights.attention_dropout)
        x = weights.add_attn(x, y)
        x = weights.add_mlp(x, weights.mlp_in(weights.norm_mlp(x)))
    return final(x)


class Attention(nn.Module):
    def __init__(self, config: LyraConfig):
        super().__init__()
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.attn_dropout = nn.Dropout(config.dropout)   # its p is SDPA's (a module, so tools that zero dropout see it)
        self.resid_dropout = nn.Dropout(config.dropout)


class MLP(nn.Module):
    def __init__(self, config: LyraConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.mlp_ratio * config.hidden_size, bias=False)
        self.fc_out = nn.Linear(config.mlp_ratio * config.hidden_size, config.hidden_size, bias=False)
        self.dropout = nn.Dropout(config.dropout)


class Block(nn.Module):
    """One layer's weights, and the model's own weight format of `transformer_step` (nn.Modules:
    autograd, dropout, PEFT wrappers)."""

    def __init__(self, config: LyraConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, bias=False)     # (3 us a call on CPU; RMSNorm's takes 11)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, bias=False)
        self.mlp = MLP(config)

    @property
    def attention_dropout(self) -> float:
        return self.attn.attn_dropout.p if self.training else 0.0

    def norm_attn(self, x):
        return self.norm1(x)

    def qkv(self, h):
        return self.attn.qkv(h)

    def add_attn(self, x, y):
        return x + self.attn.resid_dropout(self.attn.proj(y))

    def norm_mlp(self, x):
        return self.norm2(x)

    def mlp_in(self, h):
        return F.gelu(self.mlp.fc_in(h), approximate="tanh")

    def add_mlp(self, x, h):
        return x + self.mlp.dropout(self.mlp.fc_out(h))


# --------------------------------------------------------------------------------------- model
@dataclasses.dataclass
class LyraOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None          # [B, K, S, V+1]


# parameter names of models saved before the conditioners were split out (conditioners.py)
LEGACY_KEYS = {r"^condition\.text_proj\.": "condition.text.tokens.", r"^condition\.null_text$": "condition.text.null_text",
               r"^condition\.text_step\.": "condition.text.step.", r"^condition\.start\.": "condition.timing.start.",
               r"^condition\.total\.": "condition.timing.total.", r"^condition\.remaining\.": "condition.timing.remaining."}


class LyraForMusicGeneration(PreTrainedModel):
    config_class = LyraConfig
    base_model_prefix = "lyra"
    main_input_name = "codes"
    _no_split_modules = ["Block"]
    _supports_sdpa = True

    def __init__(self, config: LyraConfig):
        super().__init__(config)
        d = config.hidden_size
        self.condition = ConditioningProvider(config)
        self.codes_embed = nn.Embedding(config.num_codebooks * config.input_vocab, d)   # K tables, stacked
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_theta)
        self._offsets: torch.Tensor | None = None     # [K, 1]: codebook k's ids start at k * (V+2)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(d, bias=False)
        self.heads = nn.Linear(d, config.num_codebooks * config.output_vocab, bias=False)   # K heads, one matmul
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        kwargs.setdefault("key_mapping", LEGACY_KEYS)
        return super().from_pretrained(*args, **kwargs)

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
        elif isinstance(module, TextConditioner):
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

    def step(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """`transformer_step` with the model's own modules; advances the cache."""
        rotation = self.rotary(0 if cache is None else cache.length, x.shape[-2] if x.dim() == 3 else 1, x.device)
        logits = transformer_step(self.blocks, lambda h: self.heads(self.norm(h)), x, rotation,
                                  self.config.num_attention_heads, cache)
        if cache is not None:
            cache.length += x.shape[-2] if x.dim() == 3 else 1
        return logits

    def forward(
        self,
        codes: torch.Tensor,
        conditions: Conditions | None = None,
        labels: torch.Tensor | None = None,
        cache: KVCache | None = None,
        **kwargs,
    ) -> LyraOutput:
        """codes [B, K, S]: inputs (delayed targets shifted right, see delay.shift_right);
        conditions: text, timing and which of them are dropped (conditioners.Conditions);
        labels [B, K, S]: delayed targets, -100 where ignored.
        With a cache that already holds the prefix, the conditions are not needed.

        Returns logits [B, K, S, V+1] (the prefix positions are not scored) and the mean
        cross-entropy over labelled positions.
        """
        B, K, S = codes.shape
        x = self.embed_codes(codes)
        n_prefix = 0
        if cache is None or cache.length == 0:
            if conditions is None:
                raise ValueError("the first forward pass needs the conditions (text and timing)")
            fused = self.condition(conditions, self.codes_embed.weight.dtype)
            if cache is not None:
                cache.step_bias = None if fused.step_bias is None else fused.step_bias.to(x.dtype)
            if fused.step_bias is not None:
                x = x + fused.step_bias[:, None].to(x.dtype)
            x = torch.cat([fused.prefix, x], dim=1)
            n_prefix = fused.prefix.shape[1]
        elif cache.step_bias is not None:
            x = x + cache.step_bias[:, None]
        logits = self.step(x, cache)[:, n_prefix:]
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


AutoConfig.register(LyraConfig.model_type, LyraConfig)
AutoModel.register(LyraConfig, LyraForMusicGeneration)
AutoModelForCausalLM.register(LyraConfig, LyraForMusicGeneration)


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
