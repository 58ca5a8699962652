import os

# Tests run on 2 shared cores: one thread per process keeps torch from oversubscribing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _import_anyio_whole() -> None:
    """anyio imports its parts lazily, on first use, and it is a pytest plugin, so pytest rewrites those modules
    as they load (ast.parse). A first use inside a server thread (starlette's FileResponse -> anyio.open_file)
    while another thread parses a module trips CPython 3.11's "SystemError: AST constructor recursion depth
    mismatch" (python/cpython#106905; the listening-room browser test failed so once on a fresh clone). Every
    lazy part is resolved here, in the main thread, before any test starts a server."""
    import anyio

    for name in dir(anyio):
        getattr(anyio, name)


_import_anyio_whole()
