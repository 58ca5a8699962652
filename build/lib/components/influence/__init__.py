"""Influence: Lyra conditioned on a reference song (LoRA fine-tune + a reference conditioner), and its evaluation.

    pairs.py      reference / target pairs: different segments of one training recording
    train.py      PEFT LoRA on the attention + the reference conditioner (components/lyra/reference.py)
    reference_audio.py  an uploaded file -> reference codes (the curation stage's reader, clear errors)
    evaluator.py  a contrastive encoder on log-mel crops, trained on pieces the conditioner never saw
    attributes.py instrument (the judge), tempo (Acc2), key (MIREX), timbre statistics
    copying.py    no-copying detectors (shared token runs, training-set n-grams, mel cross-correlation)
    evaluate.py   influence index, two-choice test, copy rates with spliced controls, bottleneck sweep
    stage.py      `lyra influence train`: the whole stage
"""
