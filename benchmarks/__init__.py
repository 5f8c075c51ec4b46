"""tinymm benchmarks: each module is one benchmark with ``main(argv=None)``; run them as
``python -m benchmarks.NAME`` from the repository root or ``tinymm bench NAME``."""
