"""The listening room: `lyra serve` serves the promoted Lyra over HTTP and collects listeners' judgements.

    registry (lyra@production [, a candidate]) --engine--> models in memory, swapped when a promotion lands
    HTTP requests --batcher (one forward pass for the requests that arrive together)--> WAV
    listening page: blind A/B pairs + a 1-5 rating --votes (SQLite / PostgreSQL)--> ORAQL's import tables,
                    the `listeners_prefer` promotion gate, P(liked) per best-of-n

Modules: config (the `serve` params section), engine (load, watch, generate a batch), batcher (asyncio
micro-batching), votes (the judgements table), listeners (the statistics: preference interval, P(liked),
export), app (the Starlette routes and the page), cli (`lyra serve`, `lyra listen`).
"""
