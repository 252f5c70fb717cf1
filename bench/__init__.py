"""``tickcast bench``: throughput, latency and resource figures measured in one run.

A distribution of its own (``bench/pyproject.toml``), installed beside tickcast by ``make
setup``: the runtime package and the image ship without it.
"""

if __name__ != "tickcast_bench":  # e.g. imported as "bench" with the repository on sys.path
    raise ImportError(f"import tickcast_bench, not {__name__}: one module object per file")
