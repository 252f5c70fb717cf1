"""Agreement and Cohen's kappa between two binary raters over a sliding window.

>>> a = RollingAgreement(window_size=4)
>>> for x, y in [(1, 1), (0, 0), (1, 0), (1, 1)]:
...     a.update(bool(x), bool(y))
>>> a.agreement()
0.75
>>> round(a.kappa(), 4)
0.5
"""

from __future__ import annotations

from collections import deque

__all__ = ["RollingAgreement"]


class RollingAgreement:
    def __init__(self, window_size: int) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self._window: deque[tuple[bool, bool]] = deque(maxlen=window_size)
        self._counts = [0, 0, 0]  # both agree, rater a positive, rater b positive

    def __len__(self) -> int:
        return len(self._window)

    def update(self, a: bool, b: bool) -> None:
        if len(self._window) == self._window.maxlen:
            self._add(*self._window[0], sign=-1)
        self._window.append((a, b))
        self._add(a, b, sign=1)

    def _add(self, a: bool, b: bool, *, sign: int) -> None:
        self._counts[0] += sign * (a == b)
        self._counts[1] += sign * a
        self._counts[2] += sign * b

    def agreement(self) -> float | None:
        return self._counts[0] / len(self._window) if self._window else None

    def kappa(self) -> float | None:
        """Cohen's kappa; ``None`` when chance agreement is 1 (both raters constant)."""
        n = len(self._window)
        if n == 0:
            return None
        observed = self._counts[0] / n
        pa, pb = self._counts[1] / n, self._counts[2] / n
        expected = pa * pb + (1 - pa) * (1 - pb)
        if expected >= 1.0:
            return None
        return (observed - expected) / (1 - expected)
