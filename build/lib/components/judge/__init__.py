"""The conditioning judge: an audio classifier, trained apart from Lyra, that says which instrument
plays and which collection (style) a piece of music comes from. Lyra is graded by it, never by
its own likelihood."""
