"""What "ready" means on a real broker: the final assignment, after which the worker does not
rebalance again on its own; and the stage timings the latency timeline reads."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from tests.integration.conftest import produce
from tests.integration.test_streaming_inference import WINDOW, forecasts_of, gold_ticks
from tickcast.models.registry import ModelStore

pytestmark = pytest.mark.integration


def test_ready_is_the_final_assignment_and_every_stage_is_timed(start_worker, store: ModelStore
                                                                ) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))  # returns once tickcast_ready
    assert worker.value("tickcast_ready") == 1
    assert worker.value("tickcast_rebalances_total") == 1
    produce(worker.bootstrap, gold_ticks(worker.prefix, 4000, 100))
    assert len(forecasts_of(worker, expected=100 - WINDOW + 1)) == 100 - WINDOW + 1
    # the periodic commit (every second) has run at least once
    wait_for(lambda: (worker.value("tickcast_commit_duration_seconds_count") or 0) > 0,
             "an offset commit to be timed")
    samples = worker.metrics()
    # No second rebalance once the worker said it was ready (changelog topics exist before it
    # starts: nothing appears later that would make the group rebalance).
    assert samples.value("tickcast_rebalances_total") == 1
    assert samples.value("tickcast_ready") == 1
    batches = samples.value("tickcast_batch_duration_seconds_count", agent="prices")
    assert (batches or 0) > 0
    assert samples.value("tickcast_delivery_duration_seconds_count", agent="prices") == batches
    assert samples.value("tickcast_inference_duration_seconds_count", model="lstm") == batches
    assert (samples.value("tickcast_event_loop_lag_seconds_count") or 0) > 0
