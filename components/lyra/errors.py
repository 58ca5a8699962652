"""Lyra's user-facing error, importable without torch (so `lyra generate --server` stays light)."""

from components.common.errors import LyraError


class GenerationError(LyraError, RuntimeError):
    """A request that cannot be served (missing model, bad length...), reported as a message."""
