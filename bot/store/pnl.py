"""Realized P&L, fees, trades and win rate per account and UTC day, read from the state store.

What the figures mean (the API, the CSV export and ``check_active_trading_per_broker.py
--pnl`` all show these, from ``pnl_rows``):

- a **trade** is one closed position: a round trip from its entry to its final exit, counted
  on the UTC day it closed. An entry filled in parts, or an exit sold in parts, is still one
  trade; a position still open is none yet.
- ``realized_pnl_usd`` sums the trades closed that day, each net of its entry's and its
  exit's fees (the P&L the engine stores when it closes a position). A position sold in
  parts counts every part, all on the day it closed: a part sold on an earlier day is in
  no day's realized P&L until then (its fee is in that earlier day's ``fees_usd``).
- ``fees_usd`` sums the fees of every fill made that day, entries and exits alike, in USD.
  A fee the venue takes in the coin bought is stored valued in USD (``fills.fee_usd``). An
  entry filled today and closed tomorrow pays its fee today and counts in tomorrow's
  realized P&L, so realized P&L plus fees is no "gross" figure, and none is given: the
  store keeps each position's P&L net of its fees only.
- ``wins`` are trades with a realized P&L above zero, ``losses`` below; a trade at exactly
  zero is neither. ``win_rate`` is wins / trades, and ``None`` on a day no trade closed
  (never 0 by default: "no trade" is not "every trade lost").

Days are UTC calendar days. A store that cannot be read raises ``StoreError``: it is never
a report of zeros. The SQL is plain ``SELECT … GROUP BY`` over a computed day; the day is
computed in ``_per_day`` alone, with CAST, arithmetic and CASE only (no SQLite date
function), so another SQL database runs the same text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from bot.store.backend import Row

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "AccountPnl",
    "PnlFigures",
    "PnlQueries",
    "PnlReport",
    "day_start",
    "figures_doc",
    "last_days",
    "parse_days",
    "pnl_csv",
    "pnl_document",
    "pnl_rows",
    "utc_day",
    "write_csv",
]

SECONDS_PER_DAY = 86_400
DEFAULT_DAYS = 7
MAX_DAYS = 366  # a year, leap day included: a longer report is an export of the database
EPOCH = date(1970, 1, 1)
CSV_COLUMNS = (
    "account",
    "broker",
    "day",
    "realized_pnl_usd",
    "fees_usd",
    "trades",
    "wins",
    "losses",
    "win_rate",
)
# Sums of floats carry noise (12.499999999999998); a hundred-millionth of a dollar is
# below any fee, and four decimals of a rate are a hundredth of a percent.
USD_DECIMALS = 8
RATE_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class PnlFigures:
    """One account's results over one day (or a whole report's days, summed)."""

    realized_pnl_usd: float = 0.0
    fees_usd: float = 0.0
    trades: int = 0
    wins: int = 0
    losses: int = 0

    @property
    def win_rate(self) -> float | None:
        """Wins / trades; None when no trade closed."""
        return self.wins / self.trades if self.trades else None

    def __add__(self, other: PnlFigures) -> PnlFigures:
        return PnlFigures(
            self.realized_pnl_usd + other.realized_pnl_usd,
            self.fees_usd + other.fees_usd,
            self.trades + other.trades,
            self.wins + other.wins,
            self.losses + other.losses,
        )


@dataclass(frozen=True, slots=True)
class AccountPnl:
    """One account's figures for every day of a report, oldest first, empty days included."""

    account_key: str
    days: dict[date, PnlFigures] = field(default_factory=dict)

    @property
    def broker(self) -> str:
        """The venue: the key's last part (``user/alice/KRAKEN`` → ``KRAKEN``)."""
        return self.account_key.rsplit("/", 1)[-1]

    @property
    def total(self) -> PnlFigures:
        """The report's days summed (the win rate is over all their trades)."""
        return sum(self.days.values(), PnlFigures())


@dataclass(frozen=True, slots=True)
class PnlReport:
    """Every account's figures from ``first_day`` to ``last_day`` (both included), by key."""

    first_day: date
    last_day: date
    accounts: list[AccountPnl]

    @property
    def days(self) -> int:
        """How many days the report covers."""
        return (self.last_day - self.first_day).days + 1


def utc_day(ts: float) -> date:
    """The UTC calendar day of the epoch time ``ts``."""
    return datetime.fromtimestamp(ts, UTC).date()


def day_start(day: date) -> float:
    """Midnight UTC starting ``day``, in epoch seconds."""
    return float((day - EPOCH).days * SECONDS_PER_DAY)


def last_days(now: float, days: int) -> tuple[date, date]:
    """The first and last of the ``days`` UTC days ending with the day of ``now`` (today)."""
    today = utc_day(now)
    return today - timedelta(days=days - 1), today


def parse_days(text: str | None, default: int = DEFAULT_DAYS) -> int:
    """How many days a report covers, from a request's or a command line's text (None: the
    default); ValueError naming the problem for anything but a whole number 1…MAX_DAYS."""
    if text is None:
        return default
    value = text.strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise ValueError(
            f"days must be a whole number of UTC days from 1 to {MAX_DAYS} (today included),"
            f" not {text!r}"
        )
    return int(value)


def _per_day(rows_sql: str) -> str:
    """``rows_sql`` (columns ``account_key``, ``at``, ``amount``) with each row's UTC ``day``,
    counted in days since 1970-01-01: floor(at / 86400), the one place a day is computed.

    CAST to an integer truncates in SQLite and rounds in PostgreSQL: either way it gives
    the floor or one more (a time just before midnight may also divide to a whole number),
    and the CASE takes the one back. No date function, so any SQL database runs it.
    """
    return (
        "SELECT account_key, amount, CASE WHEN n * 86400.0 > at THEN n - 1 ELSE n END AS day"
        " FROM (SELECT account_key, at, amount, CAST(at / 86400.0 AS BIGINT) AS n"
        f" FROM ({rows_sql}) AS r) AS t"
    )


_CLOSED = (
    "SELECT account_key, day, COUNT(*) AS trades, COALESCE(SUM(amount), 0.0) AS pnl,"
    " SUM(CASE WHEN amount > 0 THEN 1 ELSE 0 END) AS wins,"
    " SUM(CASE WHEN amount < 0 THEN 1 ELSE 0 END) AS losses FROM ({rows}) AS d"
    " GROUP BY account_key, day"
)
_FEES = "SELECT account_key, day, COALESCE(SUM(amount), 0.0) AS fees FROM ({rows}) AS d GROUP BY account_key, day"
_CLOSED_ROWS = (
    "SELECT account_key, closed_at AS at, realized_pnl_usd AS amount FROM positions"
    " WHERE status = 'closed' AND closed_at >= ? AND closed_at < ?"
)
_FILL_ROWS = "SELECT account_key, at, fee_usd AS amount FROM fills WHERE at >= ? AND at < ?"
_ONE_ACCOUNT = " AND account_key = ?"


class PnlQueries:
    """The per-day P&L reads over every account (``bot.store.reader.ReadOnlyStore`` is one).

    The host supplies ``_select`` (its connection and the error policy: ``StoreError``).
    """

    def _select(self, operation: str, sql: str, *params: Any) -> list[Row]:
        """Rows of ``sql`` run with ``params``, read by column name."""
        raise NotImplementedError

    def daily_pnl(
        self, first_day: date, last_day: date, account_key: str | None = None
    ) -> dict[tuple[str, date], PnlFigures]:
        """The figures of each (account, day) from ``first_day`` to ``last_day`` (included)
        with a close or a fill; of one account only with ``account_key``."""
        params: tuple[Any, ...] = (day_start(first_day), day_start(last_day) + SECONDS_PER_DAY)
        closed_rows, fill_rows = _CLOSED_ROWS, _FILL_ROWS
        if account_key is not None:
            closed_rows, fill_rows = closed_rows + _ONE_ACCOUNT, fill_rows + _ONE_ACCOUNT
            params += (account_key,)
        closed = self._select("daily_pnl", _CLOSED.format(rows=_per_day(closed_rows)), *params)
        fees = self._select("daily_pnl", _FEES.format(rows=_per_day(fill_rows)), *params)
        figures: dict[tuple[str, date], PnlFigures] = {}
        for row in closed:
            figures[row["account_key"], EPOCH + timedelta(days=row["day"])] = PnlFigures(
                float(row["pnl"]), 0.0, row["trades"], row["wins"], row["losses"]
            )
        for row in fees:
            where = (row["account_key"], EPOCH + timedelta(days=row["day"]))
            figures[where] = figures.get(where, PnlFigures()) + PnlFigures(fees_usd=row["fees"])
        return figures

    def pnl_report(
        self,
        first_day: date,
        last_day: date,
        accounts: Iterable[str] = (),
        account_key: str | None = None,
    ) -> PnlReport:
        """Every day from ``first_day`` to ``last_day`` of the ``accounts`` (the ones the
        caller trades) and of every account with a close or a fill in those days; of
        ``account_key`` alone when given. Days without a trade or a fill are zeros with a
        win rate of None."""
        if last_day < first_day:
            raise ValueError(f"a report cannot end ({last_day}) before it starts ({first_day})")
        figures = self.daily_pnl(first_day, last_day, account_key)
        keys = {account_key} if account_key is not None else set(accounts) | {k for k, _ in figures}
        span = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
        return PnlReport(
            first_day,
            last_day,
            [
                AccountPnl(key, {day: figures.get((key, day), PnlFigures()) for day in span})
                for key in sorted(keys)
            ],
        )


# -- rows, the JSON document and the CSV export (the API's and the command line's) ---------


def figures_doc(figures: PnlFigures) -> dict[str, Any]:
    """The figures as the API and the CSV give them (money to 1e-8 USD, the rate to 1e-4)."""
    rate = figures.win_rate
    return {
        "realized_pnl_usd": round(figures.realized_pnl_usd, USD_DECIMALS),
        "fees_usd": round(figures.fees_usd, USD_DECIMALS),
        "trades": figures.trades,
        "wins": figures.wins,
        "losses": figures.losses,
        "win_rate": None if rate is None else round(rate, RATE_DECIMALS),
    }


def pnl_rows(report: PnlReport) -> list[dict[str, Any]]:
    """One row per account and day (``CSV_COLUMNS``), by account, then oldest day first."""
    return [
        {"account": acct.account_key, "broker": acct.broker, "day": day.isoformat()}
        | figures_doc(figures)
        for acct in report.accounts
        for day, figures in acct.days.items()
    ]


def pnl_document(report: PnlReport) -> dict[str, Any]:
    """The report as JSON: its days, the rows, and each account's totals over those days."""
    return {
        "from": report.first_day.isoformat(),
        "to": report.last_day.isoformat(),
        "days": report.days,
        "rows": pnl_rows(report),
        "totals": [
            {"account": acct.account_key, "broker": acct.broker} | figures_doc(acct.total)
            for acct in report.accounts
        ],
    }


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """``rows`` (``pnl_rows``) as CSV with a header row; an unknown win rate is an empty cell."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)


def pnl_csv(report: PnlReport) -> str:
    """The report as the text of a CSV file (``write_csv``)."""
    out = io.StringIO()
    write_csv(pnl_rows(report), out)
    return out.getvalue()
