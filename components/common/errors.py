"""The one base class of the errors a user can act on.

A `LyraError` is bad input, a missing or mismatched artifact, or a refused request: its message
names the file or value and the problem. `lyra` (components/cli.py) catches it once, prints
`lyra <command> [<action>]: <message>` and exits 2, without a traceback; anything else is a bug and keeps its
traceback. Each package's error class derives from it (and from ValueError or RuntimeError, as
before, so callers that catch those still do).
"""


class LyraError(Exception):
    pass
