"""One-position decoding steps, laid out for speed: the inner loop of generation.

A generation step multiplies a single row vector by every weight matrix of the model, so it is
bound by how fast the weights stream through the CPU/GPU (17 MB of fp32 weights per step at the
benchmark size), not by arithmetic. `StepDecoder` serves each step from weights prepared once:

    codes [B, K] --embedding_bag(sum)--> x [B, d]
    per layer:  h = LN(x) @ Wqkv -> rotate q, k -> cache[pos] <- k, v -> attention(q, cache[:pos+1])
                x = x + attn @ Wo ;  x = x + gelu(LN(x) @ W1) @ W2
    logits = LN(x) @ Wheads -> [B, K, V+1]

Two weight formats:
- "model": the model's own weights, transposed to [in, out] (the layout a row-vector gemv reads
  contiguously: ~25 % faster than nn.Linear's [out, in] on CPU), residual adds fused into addmm.
  Computes exactly what `LyraForMusicGeneration.forward` computes for one new position (a test
  holds them equal).
- "int8": weight-only int8, one scale per output channel (gpt-fast's recipe). The matmul kernel
  takes bf16 activations, so the residual stream and norms run in bf16 too (no conversions
  around each matmul); q/k/v, attention and the KV cache stay in the model's dtype.
  A quarter of the bytes to stream, ~4x faster matmuls at batch 1 on CPU; on the tiny model's
  held-out codes the next-code KL to the exact distribution is ~1e-4 nats (a test bounds it).
  Used for steps of at most INT8_MAX_ROWS rows; bigger batches are compute-bound and take the
  model-weights copy.

Per layer a step is ~12 tensor operations: at ~2-4 us each on CPU their count matters as much as
the bytes, so the rotation is applied in place and the new key and value go into the cache in
one copy (KVCache keeps them side by side).

Models whose linear layers are wrapped (e.g. PEFT LoRA) are served through the model's own
forward pass instead; merge adapters (`merge_and_unload()`) to get a fast path.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.lyra.model import KVCache, LyraForMusicGeneration


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
        self.B_K_V = (cfg.num_codebooks, cfg.output_vocab)
        self.dim, self.n_heads, self.head_dim = cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim
        linears = [m for b in model.blocks for m in (b.attn.qkv, b.attn.proj, b.mlp.fc_in, b.mlp.fc_out)] + [model.heads]
        self.fast = all(type(m) is nn.Linear for m in linears) and not model.training
        # int8 serves CPUs, where steps wait on memory; GPUs keep the model's weights
        self.int8 = weights == "int8" and self.fast and model.codes_embed.weight.device.type == "cpu"
        self.weights = "int8" if self.int8 else "model"           # what is actually used (for small batches)
        if not self.fast:
            return
        d = self.dtype
        self.embed = model.codes_embed.weight.detach().to(d)
        self.offsets = torch.arange(cfg.num_codebooks, device=self.embed.device) * cfg.input_vocab
        self.norms = [(b.norm1.weight.detach().to(d), b.norm2.weight.detach().to(d)) for b in model.blocks]
        self.norm = model.norm.weight.detach().to(d)
        # per layer (qkv, proj, fc_in, fc_out), then the heads: [in, out] tensors or Int8Weight
        self.layers, self.heads = self._prepare(model, lambda linear: _transposed(linear, d))
        if self.int8:
            self.int8_layers, self.int8_heads = self._prepare(model, Int8Weight.quantize)
            bf16 = torch.bfloat16
            self.bf16_embed = self.embed.to(bf16)
            self.bf16_norms = [(n1.to(bf16), n2.to(bf16)) for n1, n2 in self.norms]
            self.bf16_norm = self.norm.to(bf16)

    @staticmethod
    def _prepare(model, prepare):
        layers = [tuple(prepare(m) for m in (b.attn.qkv, b.attn.proj, b.mlp.fc_in, b.mlp.fc_out)) for b in model.blocks]
        return layers, prepare(model.heads)

    @torch.inference_mode()
    def step(self, codes: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """[B, K] ids of the newest step -> [B, K, V+1] logits of the next; appends one cache position."""
        if not self.fast:
            return self.model(codes[:, :, None], cache=cache).logits[:, :, 0]
        rotation = self.model.rotary(cache.length, 1, codes.device)             # [1, hd/2] complex
        if self.int8 and codes.shape[0] <= self.INT8_MAX_ROWS:
            logits = self._int8_step(codes, cache, rotation)
        else:
            logits = self._model_step(codes, cache, rotation)
        cache.length += 1
        return logits

    def _attend(self, qkv: torch.Tensor, kv: torch.Tensor, pos: int, rotation: torch.Tensor) -> torch.Tensor:
        """qkv [B, 3, H, hd] (fp32, owned: rotated in place), kv [2, B, H, max_len, hd] -> attention [B, H * hd].

        Stores this position's key and value in the cache (one copy) and attends over 0..pos.
        """
        B, _, H, hd = qkv.shape
        pairs = torch.view_as_complex(qkv.view(B, 3, H, hd // 2, 2))
        pairs[:, :2] *= rotation                                                 # rotate q and k
        kv.select(3, pos).copy_(qkv[:, 1:].transpose(0, 1))                      # [2, B, H, hd]
        q = qkv[:, 0, :, None].to(kv.dtype)                                      # [B, H, 1, hd]
        y = F.scaled_dot_product_attention(q, kv[0, :, :, :pos + 1], kv[1, :, :, :pos + 1])
        return y.view(B, H * hd)

    def _model_step(self, codes, cache, rotation) -> torch.Tensor:
        """The model's own weights and dtype: exactly the model's forward for one position."""
        B, d, pos = codes.shape[0], self.dim, cache.length
        x = F.embedding_bag(codes + self.offsets, self.embed, mode="sum")      # [B, d]
        if cache.step_bias is not None:
            x = x + cache.step_bias
        for kv, (n1, n2), (w_qkv, w_o, w_in, w_out) in zip(cache.layers, self.norms, self.layers):
            qkv = (F.layer_norm(x, (d,), n1) @ w_qkv).float().view(B, 3, self.n_heads, self.head_dim)
            x = torch.addmm(x, self._attend(qkv, kv, pos, rotation).to(x.dtype), w_o)
            x = torch.addmm(x, F.gelu(F.layer_norm(x, (d,), n2) @ w_in, approximate="tanh"), w_out)
        return (F.layer_norm(x, (d,), self.norm) @ self.heads).view(B, *self.B_K_V)

    def _int8_step(self, codes, cache, rotation) -> torch.Tensor:
        """Weight-only int8 matmuls; the residual stream and norms in bf16 (the matmuls' input dtype,
        so no conversions between them); q/k/v, attention and the KV cache as in the model."""
        B, d, pos = codes.shape[0], self.dim, cache.length
        mm = _int8_matmul
        x = F.embedding_bag(codes + self.offsets, self.bf16_embed, mode="sum")  # [B, d] bf16
        if cache.step_bias is not None:
            x = x + cache.step_bias.to(torch.bfloat16)
        for kv, (n1, n2), (w_qkv, w_o, w_in, w_out) in zip(cache.layers, self.bf16_norms, self.int8_layers):
            qkv = mm(F.layer_norm(x, (d,), n1), w_qkv).float().view(B, 3, self.n_heads, self.head_dim)
            x = x + mm(self._attend(qkv, kv, pos, rotation).to(torch.bfloat16), w_o)
            x = x + mm(F.gelu(mm(F.layer_norm(x, (d,), n2), w_in), approximate="tanh"), w_out)
        return mm(F.layer_norm(x, (d,), self.bf16_norm), self.int8_heads).view(B, *self.B_K_V).to(self.dtype)


def _int8_matmul(h: torch.Tensor, w: Int8Weight) -> torch.Tensor:
    """bf16 [B, in] @ int8 [out, in]^T * scale -> bf16 [B, out]"""
    return torch._weight_int8pack_mm(h, w.q, w.scale)
