"""`lyra generate`: the product command over the models (Lyra, OmniCodec; Influence with --reference,
ORAQL with --best-of, registry references such as lyra@production). The stages import the model
libraries below it (components/lyra/generation.py), never this package.
"""
