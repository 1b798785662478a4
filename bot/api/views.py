"""The documents ``/api/v1`` answers with: accounts and venues, from the daemon and its store.

An account's status is its status.json entry as the daemon builds it at this moment; its
positions, orders, health changes and operator actions are read from the state database
through a read-only connection (``mode=ro``, as the check scripts read it), opened per
request. A store that cannot be read is said as ``store_error``, and the store's fields are
then ``null``: never an empty list that would read as "no positions".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bot.errors import describe
from bot.store.operator import OperatorStore
from bot.store.pnl import PnlFigures, PnlReport, figures_doc, last_days, utc_day
from bot.store.reader import ReadOnlyStore
from bot.store.writer import StoreError

if TYPE_CHECKING:
    from bot.daemon.supervisor import IndependentBrokerTrader

__all__ = ["RECENT_SECONDS", "AccountViews", "VenueHealth"]

# "Recent" orders and health changes: the last day's, at most RECENT_LIMIT of each.
RECENT_SECONDS = 86_400.0
RECENT_LIMIT = 50
ACTIONS_LIMIT = 20
# An account document's fields read from the store: null, all of them, when it cannot be read.
_STORE_FIELDS = ("positions", "recent_orders", "health_changes", "pnl_today", "operator_actions")

# The venue layer's word on one venue (bot.venue, issue 12), or None while it has none.
VenueHealth = Callable[[str], dict[str, Any] | None]


def _rows(records: list[Any]) -> list[dict[str, Any]]:
    return [asdict(record) for record in records]


class AccountViews:
    """Builds the API's documents; every one passes the daemon's redactor."""

    def __init__(
        self, sup: IndependentBrokerTrader, venue_health: VenueHealth | None = None
    ) -> None:
        self.sup = sup
        self.venue_health = venue_health or self._watched_venue

    def _watched_venue(self, name: str) -> dict[str, Any] | None:
        """The daemon's own venue layer's word (status.json's ``venues`` entry), or None."""
        health = self.sup.venues.health.get(name)
        return None if health is None else health.snapshot()

    def _daemon_fields(self) -> dict[str, Any]:
        """The accounts document's daemon-wide fields: the daemon's time (ages are reckoned
        from it, not from a browser's clock), its mode and the isolation report."""
        return {
            "updated_at": self.sup.clock.utc_now().isoformat(),
            "mode": self.sup.settings.mode,
            "demo": self.sup.demo,
            "isolation_report": self.sup.isolation.get_isolation_report(),
        }

    def _add_equity_history(self, statuses: dict[str, dict[str, Any]]) -> None:
        """Each account's recent equity as ``equity_history``: ``[[epoch seconds, usd], ...]``,
        oldest first, kept in memory only (not in status.json); empty before a cycle read it."""
        for key, status in statuses.items():
            worker = self.sup.workers.get(key)
            points = worker.equity_history.points() if worker else []
            status["equity_history"] = [[round(at, 1), round(usd, 2)] for at, usd in points]

    def _masked(self, doc: dict[str, Any]) -> dict[str, Any]:
        masked: dict[str, Any] = self.sup.redactor.mask_data(doc)
        return masked

    def _statuses(self) -> dict[str, dict[str, Any]]:
        accounts: dict[str, dict[str, Any]] = self.sup.get_multi_broker_status()["accounts"]
        return accounts

    def accounts(self) -> dict[str, Any]:
        """Every account: its status entry, its open positions and today's P&L (``pnl_today``)."""
        statuses = self._statuses()
        self._add_equity_history(statuses)
        doc: dict[str, Any] = {"accounts": {}, **self._daemon_fields()}
        try:
            with ReadOnlyStore(self.sup.db) as store:
                today = _today(store, self.sup.trading_clock.wall())
                for key, status in statuses.items():
                    doc["accounts"][key] = {**status, "positions": _rows(store.open_positions(key))}
                    doc["accounts"][key]["pnl_today"] = today(key)
        except StoreError as exc:
            doc["store_error"] = describe(exc)
            doc["accounts"] = {
                k: {**s, "positions": None, "pnl_today": None} for k, s in statuses.items()
            }
        return self._masked(doc)

    def account(self, key: str) -> dict[str, Any] | None:
        """One account in full, or None when the daemon has no such account."""
        status = self._statuses().get(key)
        if status is None:
            return None
        doc: dict[str, Any] = {"account": key, "status": status}
        since = self.sup.clock.wall() - RECENT_SECONDS
        try:
            with ReadOnlyStore(self.sup.db) as store:
                reader = store.account(key)
                doc["positions"] = _rows(reader.open_positions())
                doc["recent_orders"] = _rows(reader.orders_since(since)[-RECENT_LIMIT:])
                doc["health_changes"] = _rows(reader.health_events_since(since)[-RECENT_LIMIT:])
                doc["pnl_today"] = _today(store, self.sup.trading_clock.wall(), key)(key)
            actions = OperatorStore(self.sup.db).actions(key, ACTIONS_LIMIT)
            doc["operator_actions"] = _rows(actions)
        except StoreError as exc:
            doc["store_error"] = describe(exc)
            for name in _STORE_FIELDS:
                doc.setdefault(name, None)
        return self._masked(doc)

    def venues(self) -> dict[str, Any]:
        """Each venue with its accounts; ``health`` is the venue layer's (null when it has none)."""
        by_venue: dict[str, list[str]] = {}
        for key, spec in self.sup.specs.items():
            by_venue.setdefault(spec.account.broker, []).append(key)
        return self._masked(
            {
                "venues": [
                    {"name": name, "accounts": sorted(keys), "health": self.venue_health(name)}
                    for name, keys in sorted(by_venue.items())
                ]
            }
        )

    def pnl(self, days: int, key: str | None = None) -> PnlReport:
        """The last ``days`` UTC days (today included) of every account of the daemon and
        every account with a trade or a fill in them, or of ``key`` alone; StoreError when
        the store cannot be read (never zeros)."""
        first, last = last_days(self.sup.trading_clock.wall(), days)  # the records' clock
        with ReadOnlyStore(self.sup.db) as store:
            return store.pnl_report(first, last, accounts=list(self.sup.specs), account_key=key)


def _today(
    store: ReadOnlyStore, now: float, key: str | None = None
) -> Callable[[str], dict[str, Any]]:
    """Each account's figures of today (UTC) as ``pnl_today``: one read for every account
    (or for ``key`` alone)."""
    day = utc_day(now)
    figures = store.daily_pnl(day, day, key)
    return lambda account: (
        {"day": day.isoformat()} | figures_doc(figures.get((account, day), PnlFigures()))
    )
