"""A prompt-adherence reward: how much more likely the text makes a piece, under the frozen pretrained model.

    adherence(x, c) = (log p_ref(x | c) - log p_ref(x | no text)) / codes drawn         nats per code

the pointwise mutual information between piece and prompt that classifier-free guidance
amplifies at sampling time (Ho & Salimans), here a reward term beside ORAQL's. Why: ORAQL scores
quality without hearing the prompt, so GRPO on ORAQL alone is free to trade the prompted
instrument for whatever ORAQL likes; measured on the tiny demo, the conditioning judge heard the
instrument in 27 % of pretrained pieces and 11 % after post-training (p = 0.02). This term pays for
keeping the text's effect.

It is a training signal only. The reported result stays ORAQL's gain, and whether the prompt
reaches the music is judged by the conditioning judge (components/judge), a model trained apart
from Lyra on real music: Lyra's likelihood never grades the post-trained model.
"""

from __future__ import annotations

import numpy as np
import torch

from components.lyra.sampling import code_log_probs
from components.rlaif.policy import EXACT, PromptTable, n_frames


class PromptAdherence:
    """reward(codes, prompts) -> adherence per piece, from the frozen pretrained model."""

    def __init__(self, reference, table: PromptTable, batch_size: int = 16):
        self.reference, self.table, self.batch_size = reference.eval(), table, batch_size
        for p in self.reference.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, codes, prompts) -> list[float]:
        T = n_frames(self.reference, self.table.seconds)
        K = self.reference.config.num_codebooks
        out = []
        for i in range(0, len(codes), self.batch_size):
            chunk = codes[i:i + self.batch_size]
            batch = torch.full((len(chunk), K, T), 0, dtype=torch.long)
            lengths = torch.tensor([c.shape[1] for c in chunk])
            for j, c in enumerate(chunk):
                batch[j, :, :c.shape[1]] = torch.as_tensor(np.asarray(c, dtype=np.int64))
            conditions = self.table.conditions(self.table.rows_of(list(prompts[i:i + self.batch_size])))
            with_text = code_log_probs(self.reference, batch, lengths, conditions, EXACT)
            without = code_log_probs(self.reference, batch, lengths, conditions.unconditional(), EXACT)
            n_codes = with_text.drawn.sum(dim=(1, 2)).clamp_min(1)
            out.extend(((with_text.total - without.total) / n_codes).tolist())
        return out
