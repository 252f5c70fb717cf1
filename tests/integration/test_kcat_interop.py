"""Any Kafka client works: kcat (librdkafka, written by others) in, kcat out."""

from __future__ import annotations

import json
import subprocess

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.helpers import require_tool

pytestmark = pytest.mark.integration


@pytest.fixture
def kcat() -> str:
    return require_tool("kcat", "apt-get install kcat")


def test_texts_produced_with_kcat_come_back_scored_to_kcat(kcat: str, start_worker) -> None:
    worker = start_worker()
    texts = {"k1": "Gold soars to a record high, investors delighted",
             "k2": "Markets crash as panic spreads; a terrible day",
             "k3": "The central bank left rates unchanged"}
    lines = "".join(f'{i}|{json.dumps({"id": i, "ts": 1_700_000_000_000, "text": t})}\n'
                    for i, t in texts.items())
    subprocess.run([kcat, "-P", "-b", worker.bootstrap, "-t", f"{worker.prefix}texts", "-K|"],
                   input=lines.encode(), check=True, timeout=60)
    result = subprocess.run(
        [kcat, "-C", "-b", worker.bootstrap, "-t", f"{worker.prefix}sentiment", "-o",
         "beginning", "-c", str(len(texts)), "-f", "%k\t%s\n"],
        capture_output=True, check=True, timeout=90)
    analyzer = SentimentIntensityAnalyzer()
    seen = {}
    for line in result.stdout.decode().splitlines():
        key, value = line.split("\t", 1)
        record = json.loads(value)
        assert key == record["id"]
        seen[key] = record["vader_compound"]
    assert seen == {i: analyzer.polarity_scores(t)["compound"] for i, t in texts.items()}
