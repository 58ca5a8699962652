"""Hostile input, fuzzed with hypothesis: every case ends in a result or an error naming the input, never a
traceback and never a hang (each case is time-boxed by hypothesis' deadline).

    cli         every `lyra` subcommand's parser and, for `generate`, its config validation: argv built from
                the command's own options and hostile values (negative, huge, NaN, empty, 10 k characters,
                control characters, other scripts)
    overrides   `--set KEY=VALUE` on every stage's config section: a config or a ConfigError
    tables      ratings and A/B tables (CSV) with mutated cells: a list or a RatingsError naming file and row
    audio       reference songs: valid WAV / FLAC / OGG / MP3 files mutated in their headers and bodies,
                truncated, empty, huge-declared: audio or a ReferenceAudioError naming the file
    prompts     the service's /v1/generate body: 200 with audio, or 4xx naming the field

Counts per kind are written to test-artifacts/reliability/fuzz.json. CI runs a few dozen cases per kind;
`make reliability` (LYRA_RELIABILITY=full) runs hundreds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FULL = os.environ.get("LYRA_RELIABILITY") == "full"
EXAMPLES = 400 if FULL else 40
FIGURES = Path(os.environ.get("LYRA_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "reliability"
COUNTS: dict[str, int] = {}
FUZZ = settings(max_examples=EXAMPLES, deadline=20_000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PER_COMMAND = settings(FUZZ, max_examples=100 if FULL else 6)     # x every subcommand

HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "-1", "-2", "0", "1e309", "nan", "inf", "-inf", "100000", "9" * 40, "1.5", "x",
                     "--", "-", "\x00", "\n", "a=b", "=", "../../etc/passwd", "ä€😀", "ﷺ", "\u202e"]),
    st.text(min_size=0, max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=10_000).map(
        lambda s: s[:10_000]),
)


def counted(kind: str) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def write_counts():
    yield
    FIGURES.mkdir(parents=True, exist_ok=True)
    previous = json.loads((FIGURES / "fuzz.json").read_text()) if (FIGURES / "fuzz.json").is_file() else {}
    (FIGURES / "fuzz.json").write_text(json.dumps({**previous, **COUNTS}, indent=1, sort_keys=True) + "\n")


def options(name: str) -> list[str]:
    from components.cli import build_command_parser

    parser = build_command_parser(name)
    found = []
    for action in parser._actions:           # the parser's own options (and its subcommands' first options)
        found += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices)
    return sorted(set(found))


COMMANDS = sorted(__import__("components.cli", fromlist=["commands"]).commands())


@pytest.mark.parametrize("name", COMMANDS)
def test_every_subcommand_parses_or_says_why(name):
    """Parsing only (the commands' work is tested elsewhere): a namespace, or argparse's exit 2 with a usage line."""
    from components.cli import build_command_parser

    flags = options(name)

    @PER_COMMAND
    @given(st.lists(st.one_of(st.sampled_from(flags or ["--x"]), HOSTILE_TEXT), max_size=8))
    def case(argv):
        counted("cli")
        parser = build_command_parser(name)
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2, (name, argv)

    case()


def test_generate_options_are_a_config_or_one_line_naming_the_option(capsys):
    from components.cli import build_command_parser
    from components.generate.cli import resolve_config
    from components.lyra.errors import GenerationError

    number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 30, 10 ** 30))

    @FUZZ
    @given(st.dictionaries(st.sampled_from(["--seconds", "--seed", "--temperature", "--top-k", "--top-p", "--cfg",
                                            "--cfg-reference", "--best-of"]), number, max_size=8))
    def case(values):
        counted("cli")
        argv = ["x", "--out", "x.wav"] + [str(v) for k, val in values.items() for v in (k, val)]
        try:
            args = build_command_parser("generate").parse_args(argv)
            resolve_config(args)
        except SystemExit as exc:
            assert exc.code == 2
        except GenerationError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("--"), str(exc)

    case()


def test_set_overrides_give_a_config_or_a_config_error():
    from components.config import ConfigError, config_from_args
    from components.pipeline import STAGES

    sections = {s.params: s.config_class() for s in STAGES if s.config}

    @FUZZ
    @given(st.sampled_from(sorted(sections)), st.lists(st.tuples(
        st.one_of(st.sampled_from(["steps", "seed", "lr", "model.dim", "batch_size", "threads", "x", "", "a.b.c"]),
                  st.text(max_size=12)), HOSTILE_TEXT), max_size=4))
    def case(section, pairs):
        counted("overrides")
        args = argparse.Namespace(params=None, profile=None, overrides=[f"{k}={v}" for k, v in pairs])
        try:
            config_from_args(section, sections[section], args)
        except ConfigError as exc:
            assert str(exc)

    case()


def test_ratings_tables_give_rows_or_every_problem_by_row(tmp_path):
    from components.oraql.ratings import RatingsError, read_pairwise, read_ratings

    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    sf.write(tmp_path / "b.wav", np.zeros(800, np.float32), 8000)
    cell = st.one_of(st.sampled_from(["a.wav", "b.wav", "a", "b", "1", "5", "3", "", "nan", "-1", "1e9", "x"]),
                     HOSTILE_TEXT)

    @FUZZ
    @given(st.booleans(), st.lists(st.lists(cell, min_size=0, max_size=7), min_size=0, max_size=6))
    def case(pairwise, rows):
        counted("tables")
        header = "audio_a,audio_b,rater,choice" if pairwise else "audio,rater,score,scale_min,scale_max"
        text = header + "\n" + "\n".join(",".join(c.replace(",", " ").replace("\n", " ").replace("\r", " ")
                                                  .replace('"', "'") for c in row) for row in rows)
        table = tmp_path / "table.csv"
        table.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            (read_pairwise if pairwise else read_ratings)(table)
        except RatingsError as exc:
            assert str(table) in str(exc)

    case()


def _encoded(fmt: str) -> bytes:
    t = np.arange(16000) / 16000
    buf = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, format=fmt, subtype=subtype)
    return buf.getvalue()


def test_reference_songs_give_audio_or_an_error_naming_the_file(tmp_path):
    from components.influence.reference_audio import ReferenceAudioError, read_reference

    originals = {fmt: _encoded(fmt) for fmt in ("WAV", "FLAC", "OGG", "MP3")}

    @FUZZ
    @given(st.sampled_from(sorted(originals)), st.sampled_from(["header", "body", "truncate", "empty", "append"]),
           st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=64),
           st.sampled_from(["song", "sóng ñame", "-dash", "x" * 200, ".hidden"]))
    def case(fmt, how, at, junk, stem):
        counted("audio")
        data = bytearray(originals[fmt])
        if how == "header":
            data[:len(junk)] = junk[:min(len(junk), len(data))]
        elif how == "body":
            i = 44 + at % max(1, len(data) - 44)
            data[i:i + len(junk)] = junk
        elif how == "truncate":
            data = data[:at % len(data)]
        elif how == "empty":
            data = bytearray()
        else:
            data += junk * 1000
        path = tmp_path / f"{stem[:100]}.{fmt.lower()}"
        path.write_bytes(bytes(data))
        try:
            audio = read_reference(path, 24000, 1.0)
            assert audio.ndim == 1 and np.isfinite(audio).all()
        except ReferenceAudioError as exc:
            assert path.name in str(exc) and "\n" not in str(exc)

    case()


def test_service_prompts_give_audio_or_a_4xx_naming_the_field(tmp_path, monkeypatch):
    from components.lyra import text
    from components.serving.app import build_app
    from tests.serving.conftest import Running, embed, free_port, write_models
    from tests.serving.test_service import make_service, post

    monkeypatch.setattr(text, "encode_prompts", embed)
    lyra, codec, oraql = write_models(tmp_path / "models")
    body = st.fixed_dictionaries({"prompt": HOSTILE_TEXT}, optional={
        "seconds": st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
                             st.integers(-10 ** 20, 10 ** 20), st.text(max_size=5)),
        "seed": st.one_of(st.integers(-10 ** 20, 10 ** 20), st.none()),
        "best_of": st.integers(-5, 100), "system": st.sampled_from(["model", "candidate", "", "x"])})
    with Running(build_app(make_service(tmp_path, lyra, codec, oraql, max_seconds=0.5)), free_port()) as srv:
        @settings(max_examples=EXAMPLES // 2, deadline=30_000, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(body)
        def case(payload):
            counted("prompts")
            status, reply, _ = post(srv.url + "/v1/generate", payload)
            assert status in (200, 400), (status, reply[:200])
            if status == 400:
                assert json.loads(reply)["error"].split(":")[0] in ("prompt", "seconds", "seed", "best_of", "system",
                                                                    "body") or "system" in json.loads(reply)["error"]

        case()
