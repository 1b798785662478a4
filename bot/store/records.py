"""The store's row types and vocabularies, and how a row becomes one (by column name).

Every stored vocabulary is a ``StrEnum`` whose values are the exact strings in the
database, so a member is written byte-identical to the string it replaced and an
existing database reads back unchanged. Rows are read by column name (``Row``,
or psycopg's dict rows on PostgreSQL: ``bot.store.backend.Row``) and mapped field by
field: no read depends on a column's position.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from bot.model import OrderType, Side

if TYPE_CHECKING:
    from bot.store.backend import Row

__all__ = [
    "CYCLE_COLUMNS",
    "DUST_COLUMNS",
    "FILL_COLUMNS",
    "HEALTH_COLUMNS",
    "ORDER_COLUMNS",
    "POSITION_COLUMNS",
    "CycleRecord",
    "DustRecord",
    "FillRecord",
    "HealthEventRecord",
    "OrderPurpose",
    "OrderRecord",
    "PositionRecord",
    "PositionStatus",
    "StoredOrderStatus",
    "check_finite",
    "check_order",
    "cycle_from_row",
    "dust_from_row",
    "fill_from_row",
    "health_from_row",
    "order_from_row",
    "position_from_row",
]

_E = TypeVar("_E", bound=StrEnum)


class StoredOrderStatus(StrEnum):
    """An order's status in the store (``orders.status``).

    The venue's answers (``bot.model.OrderStatus``) plus the two states only NIJA knows:
    stored but not sent yet, and sent with an ambiguous outcome (looked up, never re-sent).
    """

    PENDING = "pending"  # stored, not sent
    UNKNOWN = "unknown"  # sent, outcome ambiguous
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


class OrderPurpose(StrEnum):
    """Why an order was placed (``orders.purpose``): it opens a position or closes one."""

    ENTRY = "entry"
    EXIT = "exit"


class PositionStatus(StrEnum):
    """A position's status in the store (``positions.status``)."""

    OPEN = "open"
    CLOSED = "closed"


def _member(vocabulary: type[_E], name: str, value: str) -> _E:
    """``value`` as a member of ``vocabulary``; ValueError naming the allowed strings."""
    try:
        return vocabulary(value)
    except ValueError:
        allowed = [member.value for member in vocabulary]
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}") from None


@dataclass(slots=True)
class OrderRecord:
    """One order as NIJA stored it: written before it is sent, updated as the venue answers.

    ``side``, ``type``, ``purpose`` and ``status`` accept their strings and hold the
    enum members (ValueError for any other value). ``created_at``/``updated_at`` left
    None are set by the store's clock. ``attempts`` counts lookups tried for an
    ambiguous order. ``fee``/``fee_currency`` are the fee as the venue charged it.
    ``sent_at`` is when the order was last handed to the venue; ``absent_checks`` counts
    the lookups since then that found no such order, spaced by the venue's consistency
    delay, the last of them at ``absent_at`` (``bot.engine.orders``: proof of absence).
    With several nodes on one PostgreSQL, ``node_id`` and ``lease_epoch`` name the tenure
    of the account's lease under which it was stored (set by the store, never by the caller).
    """

    client_order_id: str
    account_key: str
    intent_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float | None
    quote_amount: float | None
    limit_price: float | None
    purpose: OrderPurpose
    status: StoredOrderStatus = StoredOrderStatus.PENDING
    venue_order_id: str | None = None
    filled: float = 0.0
    average_price: float | None = None
    fee_usd: float = 0.0
    reason: str | None = None
    position_id: int | None = None
    created_at: float | None = None
    updated_at: float | None = None
    attempts: int = 0
    stop: float | None = None  # entries: protective levels for the position it opens
    target: float | None = None
    initial_risk: float | None = None
    fee: float = 0.0
    fee_currency: str | None = None
    sent_at: float | None = None
    absent_checks: int = 0
    absent_at: float | None = None
    node_id: str | None = None  # several nodes: the node that stored it (the fenced insert)
    lease_epoch: int | None = None  # ...and the epoch of the account's lease it held then

    def __post_init__(self) -> None:
        self.side = _member(Side, "order side", self.side)
        self.type = _member(OrderType, "order type", self.type)
        self.purpose = _member(OrderPurpose, "order purpose", self.purpose)
        self.status = _member(StoredOrderStatus, "order status", self.status)


@dataclass(slots=True)
class FillRecord:
    """One (partial) fill of an order."""

    id: int
    account_key: str
    client_order_id: str
    quantity: float
    price: float
    fee_usd: float
    at: float


@dataclass(slots=True)
class PositionRecord:
    """A position NIJA manages; ``external`` marks one adopted from the venue.

    ``quantity`` is what the account really holds of it: fills net of any fee charged in
    the base asset. ``exit_attempts`` counts exits the venue refused; the next may be sent
    from ``exit_retry_at``; ``exit_blocked`` holds the venue's reason once no more are.
    ``realized_pnl_usd`` is net of fees: while it is open, of the parts already sold (None
    before any); once closed, of the whole round trip. Reports count it only once closed.
    """

    id: int
    account_key: str
    symbol: str
    quantity: float
    entry_price: float
    stop: float
    target: float | None
    initial_risk: float | None
    highest_close: float
    breakeven_done: bool
    opened_at: float
    entry_client_order_id: str | None
    external: bool
    status: PositionStatus
    closed_at: float | None
    exit_price: float | None
    close_reason: str | None
    realized_pnl_usd: float | None
    exit_attempts: int = 0
    exit_retry_at: float | None = None
    exit_blocked: str | None = None

    def __post_init__(self) -> None:
        self.status = _member(PositionStatus, "position status", self.status)


@dataclass(slots=True)
class DustRecord:
    """A remainder of ``asset`` too small for the venue to take: held, never traded."""

    asset: str
    quantity: float
    updated_at: float


@dataclass(slots=True)
class CycleRecord:
    """The outcome of one account cycle; ``errors`` counts failures by type name."""

    id: int
    account_key: str
    started_at: float
    duration_ms: float
    broker_calls: int
    orders_placed: int
    positions_open: int
    errors: dict[str, int]
    ok: bool


@dataclass(slots=True)
class HealthEventRecord:
    """A change of an account's health state."""

    id: int
    account_key: str
    at: float
    old: str
    new: str
    reason: str


def _columns(record: type) -> str:
    """The columns of a ``SELECT`` that fills ``record``: its field names (the column names)."""
    return ", ".join(f.name for f in fields(record))


def _values(row: Row, record: type) -> dict[str, Any]:
    """The row's value for each of ``record``'s fields, read by column name."""
    return {f.name: row[f.name] for f in fields(record)}


ORDER_COLUMNS = _columns(OrderRecord)
POSITION_COLUMNS = _columns(PositionRecord)
FILL_COLUMNS = _columns(FillRecord)
CYCLE_COLUMNS = _columns(CycleRecord)
HEALTH_COLUMNS = _columns(HealthEventRecord)
DUST_COLUMNS = _columns(DustRecord)


def order_from_row(row: Row) -> OrderRecord:
    """An ``OrderRecord`` from a row selected with ``ORDER_COLUMNS``."""
    return OrderRecord(**_values(row, OrderRecord))


def position_from_row(row: Row) -> PositionRecord:
    """A ``PositionRecord`` from a row selected with ``POSITION_COLUMNS``."""
    values = _values(row, PositionRecord)
    values["breakeven_done"] = bool(values["breakeven_done"])  # stored as 0/1
    values["external"] = bool(values["external"])
    return PositionRecord(**values)


def fill_from_row(row: Row) -> FillRecord:
    """A ``FillRecord`` from a row selected with ``FILL_COLUMNS``."""
    return FillRecord(**_values(row, FillRecord))


def cycle_from_row(row: Row) -> CycleRecord:
    """A ``CycleRecord`` from a row selected with ``CYCLE_COLUMNS``."""
    values = _values(row, CycleRecord)
    values["errors"] = json.loads(values["errors"])  # stored as a JSON object
    values["ok"] = bool(values["ok"])
    return CycleRecord(**values)


def health_from_row(row: Row) -> HealthEventRecord:
    """A ``HealthEventRecord`` from a row selected with ``HEALTH_COLUMNS``."""
    return HealthEventRecord(**_values(row, HealthEventRecord))


def dust_from_row(row: Row) -> DustRecord:
    """A ``DustRecord`` from a row selected with ``DUST_COLUMNS``."""
    return DustRecord(**_values(row, DustRecord))


def check_finite(**values: Any) -> None:
    """ValueError for a NaN or infinite number: SQLite would silently store NaN as NULL."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")


def check_order(rec: OrderRecord) -> None:
    """ValueError when an order's side, type, purpose, status or numbers are invalid.

    The record checks its vocabularies when it is made; this checks them again because
    a record's fields can be reassigned afterwards.
    """
    _member(Side, "order side", rec.side)
    _member(OrderType, "order type", rec.type)
    _member(OrderPurpose, "order purpose", rec.purpose)
    _member(StoredOrderStatus, "order status", rec.status)
    check_finite(
        amount=rec.amount,
        quote_amount=rec.quote_amount,
        limit_price=rec.limit_price,
        filled=rec.filled,
        average_price=rec.average_price,
        fee_usd=rec.fee_usd,
        stop=rec.stop,
        target=rec.target,
        initial_risk=rec.initial_risk,
        fee=rec.fee,
        sent_at=rec.sent_at,
        absent_at=rec.absent_at,
    )
