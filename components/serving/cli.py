"""`lyra serve`: serve the promoted Lyra over HTTP, with the listening room (components/serving/app.py).

    lyra serve [--model lyra@production] [--candidate lyra@staging] [--host 127.0.0.1] [--port 8765]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _serve_config(args):
    from components.config import config_from_args
    from components.serving.config import ServeConfig

    cfg = config_from_args("serve", ServeConfig, args)
    given = {k: getattr(args, k, None) for k in ("model", "candidate", "host", "port", "codec", "oraql")}
    return cfg.model_copy(update={k: v for k, v in given.items() if v is not None})


def configure(parser: argparse.ArgumentParser) -> None:
    from components.config import add_config_arguments

    parser.add_argument("--model", default=None, help="registry reference or folder to serve (default: serve.model, "
                                                       "lyra@production)")
    parser.add_argument("--candidate", default=None,
                        help="a second version the listening page pairs blind against --model, e.g. lyra@staging")
    parser.add_argument("--codec", default=None, help="codec reference or folder (default: omnicodec@production)")
    parser.add_argument("--oraql", default=None, help="ORAQL reference or folder for best-of-n (default: oraql@production)")
    parser.add_argument("--host", default=None, help="address to bind (default: 127.0.0.1; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 8765; 0 picks a free one)")
    add_config_arguments(parser)
    parser.set_defaults(func=main)


def build_service(cfg, project: Path = Path("."), profile: str | None = None, params: str | None = None):
    """The service over `project` (its registry, data and reports), with the `generate` and `listening`
    sections of `params` (default: the project's params.yaml)."""
    from components.config import load_stage_config
    from components.listening.config import ListeningConfig
    from components.listening.votes import VoteStore
    from components.lyra.config import GenerateConfig
    from components.serving.app import Service
    from components.serving.engine import Engine, Resolver

    params = params or project / "params.yaml"
    generate_cfg = load_stage_config("generate", GenerateConfig, params_path=params, profile=profile)
    listening = load_stage_config("listening", ListeningConfig, params_path=params, profile=profile)
    reports = project / cfg.reports
    reports.mkdir(parents=True, exist_ok=True)
    return Service(cfg, Engine(cfg, generate_cfg, Resolver(project)), VoteStore.open(listening.database, project),
                   reports=reports, audio_dir=project / listening.audio_dir)


def main(args) -> int:
    import uvicorn

    from components.serving.app import build_app

    cfg = _serve_config(args)
    service = build_service(cfg, profile=args.profile, params=args.params)
    print(f"lyra serve: {cfg.model}{' vs ' + cfg.candidate if cfg.candidate else ''} on http://{cfg.host}:{cfg.port}/ "
          "(the listening page; /readyz turns 200 once the models are loaded)", flush=True)
    uvicorn.run(build_app(service), host=cfg.host, port=cfg.port, log_level="info")
    return 0
