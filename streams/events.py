"""Event contracts: decoding and validating input events, encoding output events.

Every topic's value is one UTF-8 JSON object, documented for other languages by a JSON Schema in
``streams/schemas/<topic>.schema.json`` (tests keep the schemas and this module in agreement).
This module is the one validation path: input bytes either become a typed record or raise
:class:`EventError` carrying a bounded ``reason`` code (a metric label) and a message a human
can act on; the caller turns that into a dead letter.

``ts`` is event time in **integer epoch milliseconds** (UTC). ISO-8601 strings, floats and
seconds-since-epoch-looking values outside the accepted range are rejected, not guessed at.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, Literal, get_args

import orjson

from tickcast.errors import TickcastError

__all__ = [
    "REASONS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "DeadLetter",
    "EventError",
    "Forecast",
    "LabelEvent",
    "ModelUpdate",
    "PriceTick",
    "Reason",
    "SentimentScore",
    "TextEvent",
    "decode_label",
    "decode_model_update",
    "decode_price",
    "decode_text",
    "encode",
    "finite",
    "interval_fields",
]

Reason = Literal[
    "empty_value",
    "oversized",
    "not_utf8",
    "not_json",
    "not_object",
    "unknown_field",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "empty_text",
    "out_of_order",
    "scoring_failed",
]
REASONS: Final[tuple[str, ...]] = get_args(Reason)

TS_MIN_MS: Final = 0  # 1970-01-01T00:00:00Z
TS_MAX_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z
PRICE_MAX: Final = 1e12
TEXT_MAX_CHARS: Final = 10_000
ID_MAX_CHARS: Final = 128
SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9._:/-]{1,32}")
MODEL_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,63}")
SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
MODEL_ROLES: Final = ("champion", "challenger", "decision")
DECISIONS: Final = ("promote", "reject")


class EventError(TickcastError):
    """An input event that cannot be processed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class PriceTick:
    """A value on ``prices``: one observed price of ``symbol`` at event time ``ts``."""

    symbol: str
    ts: int
    price: float
    id: str | None = None


@dataclass(frozen=True, slots=True)
class TextEvent:
    """A value on ``texts``: a text to score, optionally with its ground-truth ``label``."""

    id: str
    ts: int
    text: str
    symbol: str | None = None
    label: int | None = None


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """A value on ``labels``: ground truth (1 positive, 0 negative) for text ``id``."""

    id: str
    label: int


# -- generic decoding --------------------------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise EventError("not_json", f"{name} is not valid JSON (use a finite number)")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def decode_object(raw: bytes | None, *, max_bytes: int) -> dict[str, Any]:
    """Bytes -> JSON object, or :class:`EventError` saying why not."""
    if raw is None or len(raw) == 0:
        raise EventError("empty_value", "the message has no value (null or empty)")
    if len(raw) > max_bytes:
        raise EventError("oversized", f"value is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        # The usual case, in C. What orjson refuses, the standard decoder reads again: it
        # names the reason (invalid UTF-8, a NaN literal, where the syntax breaks) or takes
        # what orjson does not (1e999 as infinity, refused by the field checks). Input no
        # output could carry (a lone surrogate: orjson will not write it) is refused here.
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        obj = _decode_exactly(raw)
        try:
            orjson.dumps(obj)
        except TypeError:
            raise EventError("not_json", f"value is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventError("not_object", f"value must be a JSON object, got {type(obj).__name__}")
    return obj


def _decode_exactly(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError("not_utf8", f"value is not valid UTF-8 ({exc.reason} at byte "
                                     f"{exc.start})") from None
    try:
        obj = _DECODER.decode(text)
    except EventError:
        raise
    except RecursionError:
        raise EventError("not_json", "JSON is nested too deeply") from None
    except ValueError as exc:
        raise EventError("not_json", f"value is not JSON: {exc}") from None
    return obj


def _check_fields(obj: Mapping[str, Any], required: tuple[str, ...],
                  optional: tuple[str, ...], kind: str) -> None:
    required_set, allowed_set = _field_sets(required, optional)
    keys = obj.keys()
    if required_set <= keys <= allowed_set:  # the usual case, as two set operations in C
        return
    allowed = required + optional
    unknown = sorted(k for k in obj if k not in allowed)
    if unknown:
        raise EventError("unknown_field", f"{kind} event has unknown field(s) "
                         f"{', '.join(map(repr, unknown))[:200]}; allowed: {', '.join(allowed)}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise EventError("missing_field", f"{kind} event is missing {', '.join(missing)}")


@functools.cache
def _field_sets(required: tuple[str, ...], optional: tuple[str, ...]
                ) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(required), frozenset(required + optional)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong_type(field: str, value: Any, expected: str) -> EventError:
    return EventError("wrong_type", f"{field} must be {expected}, got "
                      f"{type(value).__name__} {_short(value)}")


def _get_str(obj: Mapping[str, Any], field: str, *, max_chars: int) -> str:
    value = obj[field]
    if not isinstance(value, str):
        raise _wrong_type(field, value, "a string")
    if not value:
        raise EventError("invalid_value", f"{field} must not be empty")
    if len(value) > max_chars:
        raise EventError("invalid_value", f"{field} is {len(value)} characters; the limit is "
                         f"{max_chars}")
    return value


def _integer(value: Any) -> int | None:
    """JSON Schema's integer: an int (not a bool) or a float with no fractional part."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _get_ts(obj: Mapping[str, Any]) -> int:
    value = _integer(obj["ts"])
    if value is None:
        hint = " (ISO-8601 strings are not accepted)" if isinstance(obj["ts"], str) else ""
        raise _wrong_type("ts", obj["ts"], "an integer of epoch milliseconds" + hint)
    if not TS_MIN_MS <= value < TS_MAX_MS:
        raise EventError("invalid_value", f"ts={value} is outside 1970..2100 in epoch "
                         "milliseconds")
    return value


def _get_symbol(obj: Mapping[str, Any]) -> str:
    value = obj["symbol"]
    if not isinstance(value, str):
        raise _wrong_type("symbol", value, "a string")
    if not SYMBOL_RE.fullmatch(value):
        raise EventError("invalid_value", f"symbol={_short(value)} must be 1-32 characters of "
                         "A-Z a-z 0-9 . _ : / -")
    return value


def _get_label(obj: Mapping[str, Any]) -> int:
    value = _integer(obj["label"])
    if value is None:
        raise _wrong_type("label", obj["label"], "the integer 0 or 1")
    if value not in (0, 1):
        raise EventError("invalid_value", f"label={value} must be 0 or 1")
    return value


# -- input events ------------------------------------------------------------------------------
def decode_price(raw: bytes | None, *, max_bytes: int) -> PriceTick:
    obj = decode_object(raw, max_bytes=max_bytes)
    _check_fields(obj, ("symbol", "ts", "price"), ("id",), "price")
    price = obj["price"]
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise _wrong_type("price", price, "a number")
    if not (math.isfinite(price) and 0 < price < PRICE_MAX):
        raise EventError("invalid_value", f"price={_short(price)} must be finite, > 0 and "
                         f"< {PRICE_MAX:g}")
    event_id = _get_str(obj, "id", max_chars=ID_MAX_CHARS) if "id" in obj else None
    return PriceTick(symbol=_get_symbol(obj), ts=_get_ts(obj), price=float(price), id=event_id)


def decode_text(raw: bytes | None, *, max_bytes: int) -> TextEvent:
    obj = decode_object(raw, max_bytes=max_bytes)
    _check_fields(obj, ("id", "ts", "text"), ("symbol", "label"), "text")
    text = obj["text"]
    if not isinstance(text, str):
        raise _wrong_type("text", text, "a string")
    if not text.strip():
        raise EventError("empty_text", "text is empty or only whitespace")
    if len(text) > TEXT_MAX_CHARS:
        raise EventError("oversized", f"text is {len(text)} characters; the limit is "
                         f"{TEXT_MAX_CHARS}")
    return TextEvent(
        id=_get_str(obj, "id", max_chars=ID_MAX_CHARS),
        ts=_get_ts(obj),
        text=text,
        symbol=_get_symbol(obj) if obj.get("symbol") is not None else None,
        label=_get_label(obj) if obj.get("label") is not None else None,
    )


def decode_label(raw: bytes | None, *, max_bytes: int) -> LabelEvent:
    obj = decode_object(raw, max_bytes=max_bytes)
    _check_fields(obj, ("id", "label"), (), "label")
    return LabelEvent(id=_get_str(obj, "id", max_chars=ID_MAX_CHARS), label=_get_label(obj))


def decode_model_update(raw: bytes | None, *, max_bytes: int) -> ModelUpdate:
    obj = decode_object(raw, max_bytes=max_bytes)
    _check_fields(obj, ("name", "version", "uri", "sha256", "metrics", "created_at"),
                  ("rollback", "role", "clear", "decision", "rule", "evidence", "champion",
                   "decided_at"), "model-update")
    rollback, clear = obj.get("rollback", False), obj.get("clear", False)
    for flag, value in (("rollback", rollback), ("clear", clear)):
        if not isinstance(value, bool):
            raise _wrong_type(flag, value, "true or false")
    role = obj.get("role", "champion")
    if role not in MODEL_ROLES:
        raise EventError("invalid_value", f"role={_short(role)} must be one of "
                         f"{', '.join(MODEL_ROLES)}")
    if clear and role != "challenger":
        raise EventError("invalid_value", "clear applies to role=challenger only")
    audit = _decision_fields(obj, role)
    name = _get_str(obj, "name", max_chars=64)
    if not MODEL_NAME_RE.fullmatch(name):
        raise EventError("invalid_value", f"name={_short(name)} must match "
                         f"{MODEL_NAME_RE.pattern}")
    sha256 = _get_str(obj, "sha256", max_chars=64)
    if not SHA256_RE.fullmatch(sha256):
        raise EventError("invalid_value", "sha256 must be 64 lowercase hex characters")
    metrics = obj["metrics"]
    if not isinstance(metrics, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()):
        raise _wrong_type("metrics", metrics, "an object of numbers")
    created_at = _integer(obj["created_at"])
    if created_at is None or created_at < 0:
        raise _wrong_type("created_at", obj["created_at"], "epoch milliseconds")
    return ModelUpdate(name=name, version=_get_str(obj, "version", max_chars=ID_MAX_CHARS),
                       uri=_get_str(obj, "uri", max_chars=4096), sha256=sha256,
                       metrics={str(k): float(v) for k, v in metrics.items()},
                       created_at=created_at, rollback=rollback, role=role, clear=clear,
                       **audit)


def _decision_fields(obj: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The audit fields of a ``role=decision`` event (refused on any other role)."""
    present = [k for k in ("decision", "rule", "evidence", "champion", "decided_at") if k in obj]
    if role != "decision":
        if present:
            raise EventError("invalid_value", f"{', '.join(present)} apply to role=decision "
                             "only")
        return {}
    decision = obj.get("decision")
    if decision not in DECISIONS:
        raise EventError("invalid_value", f"decision={_short(decision)} must be one of "
                         f"{', '.join(DECISIONS)}")
    evidence = obj.get("evidence")
    if evidence is not None and not isinstance(evidence, dict):
        raise _wrong_type("evidence", evidence, "an object")
    decided_at = obj.get("decided_at")
    if decided_at is not None and _integer(decided_at) is None:
        raise _wrong_type("decided_at", decided_at, "epoch milliseconds")
    return {"decision": decision,
            "rule": _get_str(obj, "rule", max_chars=1000) if "rule" in obj else None,
            "evidence": evidence,
            "champion": _get_str(obj, "champion", max_chars=ID_MAX_CHARS)
            if "champion" in obj else None,
            "decided_at": _integer(decided_at) if decided_at is not None else None}


# -- output events -----------------------------------------------------------------------------
def encode(value: Mapping[str, Any]) -> bytes:
    """The one serializer for output events: compact UTF-8 JSON (orjson), NaN and infinities
    refused with a ``ValueError`` (orjson alone would write them as ``null``)."""
    if not finite(value):
        raise ValueError(f"out of range float values are not JSON compliant: {value!r:.300}")
    return orjson.dumps(value)


def finite(value: Any) -> bool:
    """No NaN or infinity anywhere in ``value`` (dicts, lists and tuples walked)."""
    for v in value.values() if isinstance(value, Mapping) else value:
        kind = type(v)
        if kind is float:
            if v - v != 0.0:  # NaN and infinities only (inf - inf is NaN)
                return False
        elif (kind is dict or kind is list or kind is tuple) and not finite(v):
            return False
    return True


class _Output:
    """Output records serialize with :func:`encode`; optional fields left ``None`` are omitted.

    Field values are JSON-ready (str, numbers, bools, None, flat dicts), so the record is
    read field by field rather than deep-copied with ``dataclasses.asdict``."""

    __slots__ = ()
    _omit_if_none: tuple[str, ...] = ()

    def to_bytes(self, *, checked: bool = False) -> bytes:
        """The record's JSON; ``checked``: the caller has checked that every float in it is
        finite, so the walk through the values that :func:`encode` makes is skipped."""
        omit = self._omit_if_none
        values = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is not None or name not in omit:
                values[name] = value
        return orjson.dumps(values) if checked else encode(values)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@dataclass(slots=True, kw_only=True)  # one per event, serialized at once: not frozen
class SentimentScore(_Output):  # (a frozen dataclass's __init__ costs twice as much)
    """A value on ``sentiment``: every model's score of one text, side by side."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("symbol", "label", "challenger_version",
                                                "challenger_score")
    id: str
    ts: int
    vader_compound: float
    vader_score: float
    vader_version: str
    rnn_score: float | None
    rnn_version: str | None
    scored_at: int
    symbol: str | None = None
    label: int | None = None
    agree: bool | None = None
    """Whether the RNN (P >= 0.5) and VADER (compound >= 0.05) call the same class."""
    challenger_version: str | None = None
    """The challenger in shadow (``tickcast models shadow``), when one scored this text."""
    challenger_score: float | None = None


@dataclass(slots=True, kw_only=True)  # one per event, serialized at once: not frozen
class Forecast(_Output):  # (a frozen dataclass's __init__ costs twice as much)
    """A value on ``forecasts``: the next price of ``symbol`` ``horizon`` ticks after ``ts``."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("id", "processed_at", "latency_ms",
                                                "challenger_version", "challenger_forecast",
                                                "lower_80", "upper_80", "lower_95",
                                                "upper_95")
    symbol: str
    ts: int
    last_price: float
    forecast: float
    horizon: int
    model_version: str
    id: str | None = None
    processed_at: int | None = None
    """Processing time, epoch milliseconds."""
    latency_ms: int | None = None
    """From the tick's Kafka timestamp to this forecast, milliseconds."""
    challenger_version: str | None = None
    """The challenger in shadow (``tickcast models shadow``), when one scored this tick."""
    challenger_forecast: float | None = None
    lower_80: float | None = None
    """The central 80 % interval of the next price (a forecaster with intervals only)."""
    upper_80: float | None = None
    lower_95: float | None = None
    """The central 95 % interval of the next price."""
    upper_95: float | None = None


def interval_fields(bounds: Sequence[float]) -> dict[str, float]:
    """``[lower_80, upper_80, lower_95, upper_95]`` -> a :class:`Forecast`'s bound fields."""
    lo80, hi80, lo95, hi95 = bounds
    return {"lower_80": lo80, "upper_80": hi80, "lower_95": lo95, "upper_95": hi95}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelUpdate(_Output):
    """A value on ``model-updates`` (compacted, keyed by ``name``): a published artifact."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("decision", "rule", "evidence", "champion",
                                                "decided_at")

    name: str
    version: str
    uri: str
    sha256: str
    metrics: dict[str, float]
    created_at: int
    rollback: bool = False
    """True when an older version is published on purpose (``tickcast models rollback``)."""
    role: str = "champion"
    """``champion`` (serves) or ``challenger`` (scored in shadow beside the champion)."""
    clear: bool = False
    """With ``role=challenger``: stop shadowing (``version`` names the challenger ended)."""
    decision: str | None = None
    """With ``role=decision`` (an audit record of the gate): ``promote`` or ``reject`` of the
    challenger ``version``; ``rule``, ``evidence`` and ``champion`` say why and against what."""
    rule: str | None = None
    evidence: dict[str, Any] | None = None
    champion: str | None = None
    decided_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter(_Output):
    """A value on ``dead-letters``: an input event that could not be processed, and why."""

    source_topic: str
    partition: int
    offset: int
    reason: Reason
    error: str
    key: str | None
    raw: str | None
    raw_encoding: Literal["base64"] = "base64"
    dead_lettered_at: int
