"""One-position decoding steps, laid out for speed: the inner loop of generation.

A generation step multiplies a single row vector by every weight matrix of the model, so it is
bound by how fast the weights stream through the CPU/GPU (17 MB of fp32 weights per step at the
benchmark size), not by arithmetic. `StepDecoder` runs the model's one `transformer_step`
(model.py) over weights prepared once, in one of two formats:

    codes [B, K] --embedding_bag(sum)--> x [B, d]  (+ the text's step bias)
    transformer_step(format's layers, x)          -> logits [B, K, V+1]

- "model": the model's own weights, transposed to [in, out] (the layout a row-vector gemv reads
  contiguously: ~25 % faster than nn.Linear's [out, in] on CPU), residual adds fused into addmm.
  Computes what `LyraForMusicGeneration.forward` computes for one new position (a test holds
  them equal).
- "int8": weight-only int8, one scale per output channel (gpt-fast's recipe). The matmul kernel
  takes bf16 activations, so the residual stream and norms run in bf16 too (no conversions
  around each matmul); q/k/v, attention and the KV cache stay in the model's dtype.
  A quarter of the bytes to stream, ~4x faster matmuls at batch 1 on CPU; on the tiny model's
  held-out codes the next-code KL to the exact distribution is ~1e-4 nats (a test bounds it).
  Used for steps of at most INT8_MAX_ROWS rows; bigger batches are compute-bound and take the
  model-weights copy.

Per layer a step is ~12 tensor operations: at ~2-4 us each on CPU their count matters as much as
the bytes, so the rotation is applied in place and the new key and value go into the cache in
one copy (see model.attend).

Models whose linear layers are wrapped (e.g. PEFT LoRA) or that are training are served through
the model's own modules (the same step, the model's weight format); merge adapters
(`merge_and_unload()`) to get a fast path.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.lyra.model import KVCache, LyraForMusicGeneration, transformer_step


WEIGHT_FORMATS = ("model", "int8")


def _transposed(linear: nn.Module, dtype) -> torch.Tensor:
    return linear.weight.detach().to(dtype).t().contiguous()


@dataclasses.dataclass(frozen=True)
class Int8Weight:
    """W [out, in] ~= q * scale[:, None]: q int8 [out, in], one bf16 scale per output channel."""

    q: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def quantize(cls, linear: nn.Module) -> "Int8Weight":
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
        q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8).contiguous()
        return cls(q=q, scale=scale.to(torch.bfloat16).contiguous())


def int8_available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def _int8_matmul(h: torch.Tensor, w: Int8Weight) -> torch.Tensor:
    """bf16 [B, in] @ int8 [out, in]^T * scale -> bf16 [B, out]"""
    return torch._weight_int8pack_mm(h, w.q, w.scale)


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """A layer's weights as [in, out] matrices in the model's dtype; residual adds fused (addmm)."""

    norm1: torch.Tensor
    norm2: torch.Tensor
    w_qkv: torch.Tensor
    w_o: torch.Tensor
    w_in: torch.Tensor
    w_out: torch.Tensor
    attention_dropout = 0.0

    def norm_attn(self, x):
        return F.layer_norm(x, x.shape[-1:], self.norm1)

    def qkv(self, h):
        return h @ self.w_qkv

    def add_attn(self, x, y):
        return torch.addmm(x, y.to(x.dtype), self.w_o)

    def norm_mlp(self, x):
        return F.layer_norm(x, x.shape[-1:], self.norm2)

    def mlp_in(self, h):
        return F.gelu(h @ self.w_in, approximate="tanh")

    def add_mlp(self, x, h):
        return torch.addmm(x, h, self.w_out)


@dataclasses.dataclass(frozen=True)
class Int8Layer:
    """A layer's matrices in weight-only int8; norms and the residual stream in bf16 (the kernel's
    activation dtype, so no conversions between matmuls)."""

    norm1: torch.Tensor
    norm2: torch.Tensor
    w_qkv: Int8Weight
    w_o: Int8Weight
    w_in: Int8Weight
    w_out: Int8Weight
    attention_dropout = 0.0

    def norm_attn(self, x):
        return F.layer_norm(x, x.shape[-1:], self.norm1)

    def qkv(self, h):
        return _int8_matmul(h, self.w_qkv)

    def add_attn(self, x, y):
        return x + _int8_matmul(y.to(torch.bfloat16), self.w_o)

    def norm_mlp(self, x):
        return F.layer_norm(x, x.shape[-1:], self.norm2)

    def mlp_in(self, h):
        return F.gelu(_int8_matmul(h, self.w_in), approximate="tanh")

    def add_mlp(self, x, h):
        return x + _int8_matmul(h, self.w_out)


@dataclasses.dataclass(frozen=True)
class StepWeights:
    """One weight format of the whole model: the embedding table, the layers, the output norm and heads."""

    dtype: torch.dtype              # of the residual stream
    embed: torch.Tensor             # [K * (V+2), d]
    layers: list
    norm: torch.Tensor
    heads: object                   # [d, K * (V+1)] or Int8Weight
    matmul: object                  # (h, heads) -> logits

    @classmethod
    def dense(cls, model: LyraForMusicGeneration, dtype) -> "StepWeights":
        def t(linear):
            return _transposed(linear, dtype)

        layers = [DenseLayer(b.norm1.weight.detach().to(dtype), b.norm2.weight.detach().to(dtype), t(b.attn.qkv),
                             t(b.attn.proj), t(b.mlp.fc_in), t(b.mlp.fc_out)) for b in model.blocks]
        return cls(dtype, model.codes_embed.weight.detach().to(dtype), layers, model.norm.weight.detach().to(dtype),
                   t(model.heads), torch.matmul)

    @classmethod
    def int8(cls, model: LyraForMusicGeneration) -> "StepWeights":
        bf16, q = torch.bfloat16, Int8Weight.quantize
        layers = [Int8Layer(b.norm1.weight.detach().to(bf16), b.norm2.weight.detach().to(bf16), q(b.attn.qkv),
                            q(b.attn.proj), q(b.mlp.fc_in), q(b.mlp.fc_out)) for b in model.blocks]
        return cls(bf16, model.codes_embed.weight.detach().to(bf16), layers,
                   model.norm.weight.detach().to(bf16), q(model.heads), _int8_matmul)

    def final(self, x):
        return self.matmul(F.layer_norm(x, x.shape[-1:], self.norm), self.heads)


class StepDecoder:
    # Above this many rows per step the matmuls stop waiting on memory and the int8 kernel's
    # dequantisation costs more than the bytes it saves (measured on 2-core AVX-512 CPUs: int8
    # 1.4x faster at 1 row, equal at 16, slower at 32), so larger batches use the fp32 copy.
    INT8_MAX_ROWS = 8

    def __init__(self, model: LyraForMusicGeneration, weights: str = "model"):
        if weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
        if weights == "int8" and not int8_available():
            raise ValueError("this torch build has no weight-only int8 matmul (torch._weight_int8pack_mm)")
        self.model, cfg = model, model.config
        self.dtype = next(model.parameters()).dtype              # of the KV cache and the residual stream
        self.K_V = (cfg.num_codebooks, cfg.output_vocab)
        self.n_heads = cfg.num_attention_heads
        linears = [m for b in model.blocks for m in (b.attn.qkv, b.attn.proj, b.mlp.fc_in, b.mlp.fc_out)] + [model.heads]
        self.fast = all(type(m) is nn.Linear for m in linears) and not model.training
        # int8 serves CPUs, where steps wait on memory; GPUs keep the model's weights
        self.int8 = weights == "int8" and self.fast and model.codes_embed.weight.device.type == "cpu"
        self.weights = "int8" if self.int8 else "model"           # what is actually used (for small batches)
        if not self.fast:
            return
        self.offsets = torch.arange(cfg.num_codebooks, device=model.codes_embed.weight.device) * cfg.input_vocab
        self.dense = StepWeights.dense(model, self.dtype)
        self.int8_weights = StepWeights.int8(model) if self.int8 else None

    @torch.inference_mode()
    def step(self, codes: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """[B, K] ids of the newest step -> [B, K, V+1] logits of the next; appends one cache position."""
        if not self.fast:
            return self.model(codes[:, :, None], cache=cache).logits[:, :, 0]
        rotation = self.model.rotary(cache.length, 1, codes.device)             # [1, hd/2] complex
        w = self.int8_weights if self.int8 and codes.shape[0] <= self.INT8_MAX_ROWS else self.dense
        x = F.embedding_bag(codes + self.offsets, w.embed, mode="sum")          # [B, d]
        if cache.step_bias is not None:
            x = x + cache.step_bias.to(w.dtype)
        logits = transformer_step(w.layers, w.final, x, rotation, self.n_heads, cache)
        cache.length += 1
        return logits.view(codes.shape[0], *self.K_V).to(self.dtype)
