"""Labels meet their texts in either order, each id counts once, memory stays bounded."""

from __future__ import annotations

from tickcast.streams.sentiment.join import LabelJoin


def test_inline_label_counts_at_once() -> None:
    join = LabelJoin(window_size=10, pending_max=10)
    assert join.on_scored("a", {"vader": 0.9}, 1) == "matched"
    assert join.on_scored("b", {"vader": 0.1}, 0) == "matched"
    assert join.auc("vader").get() == 1.0


def test_label_after_text_and_before_text() -> None:
    join = LabelJoin(window_size=10, pending_max=10)
    assert join.on_scored("a", {"vader": 0.2, "rnn": 0.8}, None) == "unlabelled"
    assert join.on_label("a", 1) == "matched"
    assert join.on_label("b", 0) == "waiting"
    assert join.waiting_labels == 1
    assert join.on_scored("b", {"vader": 0.6, "rnn": 0.1}, None) == "matched"
    assert join.waiting_labels == join.waiting_texts == 0
    assert join.auc("vader").get() == 0.0  # the positive scored below the negative
    assert join.auc("rnn").get() == 1.0


def test_duplicates_count_once() -> None:
    join = LabelJoin(window_size=10, pending_max=10)
    join.on_scored("a", {"vader": 0.9}, 1)
    assert join.on_label("a", 1) == "duplicate"
    assert join.on_scored("a", {"vader": 0.9}, 1) == "duplicate"  # redelivered text
    assert len(join.auc("vader")) == 1


def test_pending_state_is_bounded_and_expiry_counted() -> None:
    join = LabelJoin(window_size=10, pending_max=3)
    for i in range(5):
        join.on_scored(f"t{i}", {"vader": 0.5}, None)
        join.on_label(f"l{i}", 1)
    assert join.waiting_texts == 3
    assert join.waiting_labels == 3
    assert join.expired == 4
    assert join.on_label("t0", 1) == "waiting"  # t0 was forgotten: it cannot match any more
