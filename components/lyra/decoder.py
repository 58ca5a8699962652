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
- "int8": weight-only int8, one scale per output channel (gpt-fast's recipe), bf16 activations
  into the matmuls; residual stream, norms, attention and KV cache stay in the model's dtype.
  A quarter of the bytes to stream, ~4x faster matmuls at batch 1 on CPU; on the tiny model's
  held-out codes the next-code KL to the exact distribution is 8e-5 nats (a test bounds it).
  Used for steps of at most INT8_MAX_ROWS rows; bigger batches are compute-bound and take the
  model-weights copy.

Models whose linear layers are wrapped (e.g. PEFT LoRA) are served through the model's own
forward pass instead; merge adapters (`merge_and_unload()`) to get a fast path.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.lyra.model import KVCache, LyraForMusicGeneration, apply_rotary


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

    @staticmethod
    def _prepare(model, prepare):
        layers = [tuple(prepare(m) for m in (b.attn.qkv, b.attn.proj, b.mlp.fc_in, b.mlp.fc_out)) for b in model.blocks]
        return layers, prepare(model.heads)

    @staticmethod
    def _matmul(h: torch.Tensor, w) -> torch.Tensor:
        if isinstance(w, Int8Weight):
            return torch._weight_int8pack_mm(h.to(torch.bfloat16), w.q, w.scale)
        return h @ w

    @staticmethod
    def _add_matmul(x: torch.Tensor, h: torch.Tensor, w) -> torch.Tensor:
        """x + h @ w (one fused addmm for the model's own weights)."""
        if isinstance(w, Int8Weight):
            return x + torch._weight_int8pack_mm(h.to(torch.bfloat16), w.q, w.scale)
        return torch.addmm(x, h, w)

    @torch.inference_mode()
    def step(self, codes: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """[B, K] ids of the newest step -> [B, K, V+1] logits of the next; appends one cache position."""
        B = codes.shape[0]
        if not self.fast:
            return self.model(codes[:, :, None], cache=cache).logits[:, :, 0]
        d, H, hd, pos = self.dim, self.n_heads, self.head_dim, cache.length
        mm, add_mm = self._matmul, self._add_matmul
        small = self.int8 and B <= self.INT8_MAX_ROWS
        layers, heads = (self.int8_layers, self.int8_heads) if small else (self.layers, self.heads)
        rotation = self.model.rotary(pos, 1, codes.device)                      # [1, hd/2]
        x = F.embedding_bag(codes + self.offsets, self.embed, mode="sum")      # [B, d]
        for layer, ((n1, n2), (w_qkv, w_o, w_in, w_out)) in enumerate(zip(self.norms, layers)):
            qkv = mm(F.layer_norm(x, (d,), n1), w_qkv).to(self.dtype).view(B, 3, H, hd)
            qk = apply_rotary(qkv[:, :2], rotation)                             # [B, 2, H, hd]
            cache.k[layer, :, :, pos] = qk[:, 1]
            cache.v[layer, :, :, pos] = qkv[:, 2]
            y = F.scaled_dot_product_attention(qk[:, 0, :, None], cache.k[layer, :, :, :pos + 1],
                                               cache.v[layer, :, :, :pos + 1])  # [B, H, 1, hd]
            x = add_mm(x, y.view(B, d), w_o)
            x = add_mm(x, F.gelu(mm(F.layer_norm(x, (d,), n2), w_in), approximate="tanh"), w_out)
        cache.length = pos + 1
        return mm(F.layer_norm(x, (d,), self.norm), heads).view(B, *self.B_K_V).to(self.dtype)
