"""``tickcast bench``: throughput, latency and resource figures measured in one run."""
