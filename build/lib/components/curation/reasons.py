"""Why a file or clip was quarantined: one short code per failure, with what it means.

Whole-file rejects have an empty clip_id; clip-level rejects (silent, clipped, loudness,
duplicate) name the clip. Every input file that is not a sidecar ends up with at least one
manifest row or one quarantine row: `curate.py` checks that before it writes anything.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "unreadable": "the file cannot be opened at all (permissions, a dangling symlink, an I/O error)",
    "empty": "0 bytes, or a valid header with no audio frames",
    "unsupported_format": "not an audio file extension (.txt, .png, an orphan .json with no audio beside it, ...)",
    "not_audio": "has an audio extension but its bytes are no known audio container (text, an image, ...)",
    "corrupt": "an audio container the decoder cannot open or decode",
    "truncated": "the file stops before the end its header declares (cut short by a copy or an upload)",
    "bad_shape": "zero or too many channels, or an impossible sample rate",
    "too_long": "longer than max_file_s (decoding it would not fit a worker's memory budget)",
    "too_short": "shorter than one minimum clip, before or after trimming silence",
    "non_finite": "NaN or infinite samples",
    "silent": "no audible signal (the whole file, or a clip that is mostly silence)",
    "no_content": "a signal with nothing to hear: a constant (DC) offset, one repeated sample value, or only "
                  "sub-audible (below the audible band's lower edge) motion",
    "clipped": "a clip with more than max_clipped_fraction of its samples in clipped runs",
    "loudness_out_of_range": "the peak ceiling keeps the clip too far below the loudness target",
    "bad_sidecar": "the <stem>.json sidecar is unreadable or not a JSON object (its piece/split would be lost)",
    "duplicate": "an audio near-duplicate (fingerprint) of a clip kept earlier; the detail names that clip",
    "crashed": "the worker process died on this file (e.g. a decoder crash); other files are unaffected",
    "error": "an unexpected error while processing the file; the detail has the exception",
}


class Rejected(Exception):
    """Raised inside the per-file pipeline to quarantine the file with `reason` and `detail`."""

    def __init__(self, reason: str, detail: str):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
