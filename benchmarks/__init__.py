"""tinymm benchmarks, installed as ``tinymm.benchmarks``: each module is one benchmark with
``main(argv=None)``; run them as ``tinymm bench NAME`` (or ``python -m benchmarks.NAME`` from
the repository root). Modules import each other relatively (``from .harness import run``),
so the same files work under both names."""
