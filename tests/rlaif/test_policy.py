"""Lyra under TRL's GRPOTrainer: the extension points exist, log-probs line up, a few steps learn a toy reward."""

import inspect
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from components.rlaif.policy import OVERRIDDEN, USED, CodeVocabulary, LyraRollout, PromptTable  # noqa: E402


def test_trl_is_the_pinned_version_and_its_extension_points_exist():
    import trl
    from trl import GRPOTrainer

    assert trl.__version__.startswith("1.16."), "policy.py was written against TRL 1.16: re-check its overrides"
    for name in OVERRIDDEN + USED:
        assert callable(getattr(GRPOTrainer, name, None)), f"GRPOTrainer.{name} is gone"
    logps = inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters
    assert list(logps)[:5] == ["self", "model", "input_ids", "attention_mask", "logits_to_keep"]
    assert {"batch_size", "compute_entropy", "compute_aux_loss"} <= set(logps)
    assert "rollout_func" in inspect.signature(GRPOTrainer.__init__).parameters


def test_codes_round_trip_through_the_id_stream():
    vocab = CodeVocabulary(num_codebooks=3, codebook_size=8)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 8, (2, 3, 5))
    lengths = [5, 2]                                          # the second piece ended after 2 frames
    ids = [vocab.encode(codes[i], lengths[i]) for i in range(2)]
    assert len(ids[0]) == 15 and len(ids[1]) == 7 and ids[1][-1] == vocab.end_id
    assert ids[0][:4] == [codes[0, 0, 0], 9 + codes[0, 1, 0], 18 + codes[0, 2, 0], codes[0, 0, 1]]
    grid = torch.full((2, 15), vocab.pad_id)
    mask = torch.zeros(2, 15, dtype=torch.long)
    for i, x in enumerate(ids):
        grid[i, :len(x)], mask[i, :len(x)] = torch.tensor(x), 1
    back, back_lengths = vocab.decode(grid, mask, 5)
    assert back_lengths.tolist() == lengths
    assert torch.equal(back[0], torch.from_numpy(codes[0])) and torch.equal(back[1, :, :2], torch.from_numpy(codes[1, :, :2]))
    tok = vocab.tokenizer()
    assert tok.pad_token_id == vocab.pad_id and tok.eos_token_id == vocab.end_id
    assert tok.decode(ids[1][-2:]) == f"k2:{codes[1, 2, 1]} k0:end"


def low_codes(codes, prompts):
    """Toy reward: the share of codebook-0 codes below 4 (a quarter of the 16 at random)."""
    return [float(np.mean(c[0] < 4)) if c.shape[1] else 0.0 for c in codes]


@pytest.fixture
def trainer(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from components.rlaif.policy import LyraGRPOTrainer
    from components.rlaif.rewards import as_trl_reward
    from components.rlaif.train import prepare_policy
    from tests.rlaif.conftest import tiny_model

    torch.set_num_threads(1)
    path = tiny_model(tmp_path / "base")
    model = prepare_policy(path)
    captions = [f"prompt {i}" for i in range(4)]
    table = PromptTable(captions, np.random.default_rng(0).normal(size=(4, 384)).astype(np.float32), seconds=1.0)
    vocab = CodeVocabulary(4, 16)
    args = GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, num_generations=4, per_device_train_batch_size=8,
                      max_steps=25, learning_rate=1e-2, beta=0.05, logging_steps=1, save_strategy="no", report_to=[],
                      activation_checkpointing=False, seed=0, bf16=False)
    return LyraGRPOTrainer(model=model, reward_funcs=as_trl_reward(low_codes, "low_codes"), args=args,
                           train_dataset=Dataset.from_dict({"prompt": captions * 25}), processing_class=vocab.tokenizer(),
                           rollout_func=LyraRollout(table, vocab, seed=0), prompt_table=table, vocab=vocab)


def test_trainer_log_probs_are_the_samplers(trainer):
    """What GRPO's ratio and KL use equals what the rollout drew with, id for id."""
    model = trainer.model.eval()
    rollout = trainer.rollout_func(list(trainer.prompt_table.captions) * 2, trainer)
    width = max(len(c) for c in rollout["completion_ids"])
    ids = torch.full((8, width + 1), trainer.vocab.pad_id)
    mask = torch.zeros(8, width + 1, dtype=torch.long)
    for i, (p, c) in enumerate(zip(rollout["prompt_ids"], rollout["completion_ids"])):
        ids[i, :len(c) + 1], mask[i, :len(c) + 1] = torch.tensor(p + c), 1
    with torch.no_grad():
        logps, entropy, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, width, batch_size=3,
                                                                      compute_entropy=True)
    for i, drawn in enumerate(rollout["logprobs"]):
        torch.testing.assert_close(logps[i, :len(drawn)], torch.tensor(drawn), atol=1e-5, rtol=1e-5)
        assert bool((entropy[i, :len(drawn)] > 0).all()) and float(logps[i, len(drawn):].abs().sum()) == 0.0


def test_a_few_grpo_steps_change_the_policy_and_raise_the_reward(trainer):
    table, vocab = trainer.prompt_table, trainer.vocab

    def mean_reward() -> float:
        trainer.model.eval()
        codes = LyraRollout(table, vocab, seed=123)(list(table.captions) * 16, trainer)["codes"]
        trainer.model.train()
        return float(np.mean(low_codes(codes, None)))

    before_reward = mean_reward()
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) >= len(before) - 1                       # (the null text is unused: no text is dropped)
    after_reward = mean_reward()
    assert after_reward > before_reward + 0.2, (before_reward, after_reward)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 25 and all("kl" in h for h in logs)      # KL to the reference reported every step
    assert trainer.beta > 0 and trainer.ref_model is not None and logs[-1]["kl"] > 0


def test_the_judge_comparison_pairs_outcomes_and_leaves_unknown_truths_out():
    from components.rlaif.evaluate import judge_comparison

    before = np.array([1, 1, 1, 1, 1, 1, 0, np.nan])
    after = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    out = judge_comparison(before, after)
    assert out["judge_n"] == 7
    assert out["judge_instrument_accuracy_pretrained"] == 6 / 7 and out["judge_instrument_accuracy_post_trained"] == 0
    assert out["judge_p_post_worse"] < 0.05                              # 6 of 6 discordant pairs went the worse way
    assert judge_comparison(after, before)["judge_p_post_worse"] == 1.0
