"""``tickcast bench``: throughput, latency and resource figures measured in one run.

A distribution of its own (``bench/pyproject.toml``), installed beside tickcast by ``make
setup``: the runtime package and the image ship without it.
"""
