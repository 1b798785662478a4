"""Candle files: load and validate a CSV series of candles for a replay.

CSV format: the header ``timestamp,open,high,low,close,volume``, one candle per line.
``timestamp`` is the candle's open time, either an integer in epoch **milliseconds**
(never seconds: there is no guessing, ``1700000000`` means 1970-01-20) or ISO-8601
with ``Z`` or an offset (``2023-11-14T22:15:00Z``, ``2023-11-14T23:15:00+01:00``).
The candle interval is the smallest gap between timestamps; it must be whole minutes.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np

from bot.model import Candles

__all__ = ["HEADER", "CandleFileError", "iso_utc", "load_candles", "series_step_ms"]

HEADER = ("timestamp", "open", "high", "low", "close", "volume")
_EPOCH_MS = re.compile(r"^\d+$")


class CandleFileError(ValueError):
    """A candle file that cannot be replayed; the message names the file and line."""


def load_candles(path: str | Path) -> Candles:
    """The candles of a CSV file (see the module docstring), sorted oldest first.

    Raises ``CandleFileError`` naming the line for a bad header, a malformed row, a
    NaN / infinite / negative number, a candle whose high or low does not contain its
    open and close, or a duplicate timestamp; and for a file with fewer than 2 candles.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = _parse_rows(path, csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CandleFileError(f"{path}: cannot read: {exc}") from exc
    if len(rows) < 2:
        raise CandleFileError(f"{path}: needs at least 2 candles, found {len(rows)}")
    rows.sort(key=lambda r: r[1][0])
    for (line_a, a), (line_b, b) in pairwise(rows):
        if a[0] == b[0]:
            first, again = sorted((line_a, line_b))
            raise CandleFileError(
                f"{path}:{again}: duplicate timestamp {iso_utc(a[0] / 1000)} (first on line {first})"
            )
    candles = Candles.from_rows([r for _, r in rows])
    try:
        series_step_ms(candles)
    except CandleFileError as exc:
        raise CandleFileError(f"{path}: {exc}") from None
    return candles


def _parse_rows(path: Path, reader) -> list[tuple[int, list[float]]]:
    """``(line number, [ms, o, h, l, c, v])`` per data row; blank lines are skipped."""
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise CandleFileError(
            f"{path}:1: the header must be {','.join(HEADER)}, not {','.join(header or [])!r}"
        )
    rows = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(HEADER):
            raise CandleFileError(f"{path}:{line}: expected 6 fields, found {len(cells)}")
        try:
            rows.append((line, [float(_timestamp_ms(cells[0])), *_ohlcv(cells[1:])]))
        except ValueError as exc:
            raise CandleFileError(f"{path}:{line}: {exc}") from None
    return rows


def _timestamp_ms(text: str) -> int:
    """Epoch milliseconds from ``text``: digits (milliseconds) or ISO-8601 with a zone."""
    text = text.strip()
    if _EPOCH_MS.match(text):
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither epoch milliseconds nor ISO-8601") from None
    if when.tzinfo is None:
        raise ValueError(f"ISO-8601 timestamp {text!r} needs Z or an offset such as +00:00")
    if when.microsecond % 1000:
        raise ValueError(f"timestamp {text!r} is finer than a millisecond")
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _ohlcv(cells: list[str]) -> list[float]:
    values = []
    for name, text in zip(HEADER[1:], cells, strict=True):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} {text.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} is {text.strip()}, not a finite number")
        if value < 0 or (value == 0 and name != "volume"):  # a volume of 0 is a quiet candle
            rule = "must not be negative" if name == "volume" else "must be positive"
            raise ValueError(f"{name} {rule}, got {text.strip()}")
        values.append(value)
    open_, high, low, close, _ = values
    if high < max(open_, close) or low > min(open_, close):
        raise ValueError(f"high {high:g} and low {low:g} must contain open and close")
    return values


def series_step_ms(candles: Candles) -> int:
    """The candle interval: the smallest gap between timestamps, in whole minutes."""
    step = int(np.diff(candles.timestamp_ms).min())
    if step <= 0 or step % 60_000:
        raise CandleFileError(f"the candle interval {step} ms is not a whole number of minutes")
    return step


def iso_utc(seconds: float | None) -> str:
    """``seconds`` (epoch) as ISO-8601 UTC to the second with ``Z``; "" for None."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
