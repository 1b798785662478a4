"""What one account's cycle did: the ``CycleResult`` the daemon logs, stores and shows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CycleResult:
    """What one cycle did, for status.json, the log and the store."""

    account_key: str
    started_at: float  # wall-clock epoch seconds
    duration_ms: float = 0.0
    broker_calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failure type → count
    orders_placed: int = 0
    # The store's count at the cycle's end; None when the store could not be read: unknown,
    # never shown as 0 (a failed query is not "no positions").
    positions_open: int | None = None
    equity_usd: float | None = None
    ok: bool = True  # False when the cycle ended early
    blocked_reason: str | None = None  # the gate said no
    retry_in_seconds: float | None = None  # ...and for how long it will keep saying no
    # Its venue is back; the next cycle starts at this account's staggered resume time.
    resume_in_seconds: float | None = None
    error: str | None = None  # what ended the cycle early
    disk_full: bool = False  # a store write failed for lack of disk space
    notes: list[str] = field(default_factory=list)
    no_signal: str | None = None  # why the entry scan took no entry, e.g. "BTC/USD adx 14<20"
    # The last price of each symbol the cycle priced (its newest candle's close, the forming
    # one included): status.json's ``marks``, which the checks value open positions at.
    marks: dict[str, float] = field(default_factory=dict)
    # What the store holds after the cycle, for status.json:
    dust: dict[str, float] = field(default_factory=dict)  # asset → remainder too small to trade
    exit_blocked: dict[str, str] = field(default_factory=dict)  # symbol → the venue's reason
    orders_unknown: list[str] = field(default_factory=list)  # client ids of ambiguous orders
    # Several nodes: this node lost the account's lease (why); nothing more is sent for it.
    lease_lost: str | None = None
