"""An evaluator nobody here trained: set-level metrics on its embeddings and tag posteriors (distances.py), each
with a scale measured on the same run (calibration.py)."""
