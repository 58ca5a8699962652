"""Dagster orchestration of the Lyra lifecycle. `definitions.py` is the code location."""
