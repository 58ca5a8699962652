"""One-position decoding steps, laid out for speed: the inner loop of generation.

A generation step multiplies a single row vector by every weight matrix of the model, so it is
bound by how fast the weights stream through the CPU/GPU, not by arithmetic. `StepDecoder`
keeps a copy of the trained weights transposed to [in, out] (the layout a row-vector gemv
reads contiguously: ~25 % faster than nn.Linear's [out, in] on CPU), fuses residual adds into
addmm, and writes keys/values straight into the preallocated KV cache:

    codes [B, K] --embedding_bag(sum)--> x [B, d]
    per layer:  h = LN(x) @ Wqkv -> rotate q, k -> cache[pos] <- k, v -> SDPA(q, cache[:pos+1])
                x = x + attn @ Wo ;  x = x + gelu(LN(x) @ W1) @ W2
    logits = LN(x) @ Wheads -> [B, K, V+1]

It computes exactly what `LyraForMusicGeneration.forward` computes for one new position (a test
holds them equal). Models whose linear layers are wrapped (e.g. PEFT LoRA) are served through
the model's own forward pass instead; merge adapters (`merge_and_unload()`) to get the fast path.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from components.lyra.model import KVCache, LyraForMusicGeneration, apply_rotary


def _transposed(linear: nn.Module, dtype) -> torch.Tensor:
    return linear.weight.detach().to(dtype).t().contiguous()


class StepDecoder:
    def __init__(self, model: LyraForMusicGeneration):
        self.model, cfg = model, model.config
        self.dtype = next(model.parameters()).dtype
        self.B_K_V = (cfg.num_codebooks, cfg.output_vocab)
        self.dim, self.n_heads, self.head_dim = cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim
        linears = [m for b in model.blocks for m in (b.attn.qkv, b.attn.proj, b.mlp.fc_in, b.mlp.fc_out)] + [model.heads]
        self.fast = all(type(m) is nn.Linear for m in linears) and not model.training
        if not self.fast:
            return
        d = self.dtype
        self.embed = model.codes_embed.weight.detach().to(d)
        self.offsets = torch.arange(cfg.num_codebooks, device=self.embed.device) * cfg.input_vocab
        self.layers = [
            (b.norm1.weight.detach().to(d), _transposed(b.attn.qkv, d), _transposed(b.attn.proj, d),
             b.norm2.weight.detach().to(d), _transposed(b.mlp.fc_in, d), _transposed(b.mlp.fc_out, d))
            for b in model.blocks
        ]
        self.norm = model.norm.weight.detach().to(d)
        self.heads = _transposed(model.heads, d)

    @torch.inference_mode()
    def step(self, codes: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """[B, K] ids of the newest step -> [B, K, V+1] logits of the next; appends one cache position."""
        B = codes.shape[0]
        if not self.fast:
            return self.model(codes[:, :, None], cache=cache).logits[:, :, 0]
        d, H, hd, pos = self.dim, self.n_heads, self.head_dim, cache.length
        rotation = self.model.rotary(pos, 1, codes.device)                      # [1, hd/2]
        x = F.embedding_bag(codes + self.offsets, self.embed, mode="sum")      # [B, d]
        for layer, (n1, w_qkv, w_o, n2, w_in, w_out) in enumerate(self.layers):
            qkv = (F.layer_norm(x, (d,), n1) @ w_qkv).view(B, 3, H, hd)
            qk = apply_rotary(qkv[:, :2], rotation)                             # [B, 2, H, hd]
            cache.k[layer, :, :, pos] = qk[:, 1]
            cache.v[layer, :, :, pos] = qkv[:, 2]
            y = F.scaled_dot_product_attention(qk[:, 0, :, None], cache.k[layer, :, :, :pos + 1],
                                               cache.v[layer, :, :, :pos + 1])  # [B, H, 1, hd]
            x = torch.addmm(x, y.view(B, d), w_o)
            x = torch.addmm(x, F.gelu(F.layer_norm(x, (d,), n2) @ w_in, approximate="tanh"), w_out)
        cache.length = pos + 1
        return (F.layer_norm(x, (d,), self.norm) @ self.heads).view(B, *self.B_K_V)
