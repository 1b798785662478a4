"""The crash-restart check: a venue's orders and holdings against the state database.

Every violation of the promise, as readable identifiers, by kind:

* ``duplicate_orders``: a client id, or an intent, with more than one venue order;
* ``orders_unknown_to_store``: a venue order whose client id the store never saw
  (sent without being stored first);
* ``lost_positions``: a holding without an open stored position, an open stored
  position the venue does not hold, or quantities more than 1 % apart;
* ``unresolved_orders``: stored orders still ``pending`` or ``unknown``;
* ``mis_settled_orders``: a stored outcome that contradicts the venue's (stored
  rejected but filled at the venue, stored filled but not at the venue, ...);
* ``fills_without_position``: a filled entry that opened no stored position (the
  holding is then adopted as "external", its signal's stop and target lost), or a
  filled exit whose position was not closed by it.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from bot.store.backend import Database
from bot.store.writer import Store
from nija_testkit.emulator.core import Ledger, Market

QTY_TOLERANCE = 0.01  # the reconciler's own tolerance
DUST_USD = 0.01  # holdings worth less count as flat (sells are rounded down to 1e-9 shares)
VIOLATIONS = ("duplicate_orders", "orders_unknown_to_store", "lost_positions",
              "unresolved_orders", "mis_settled_orders", "fills_without_position")  # fmt: skip


def compare(
    ledgers: dict[str, Ledger], db: Path | Database, market: Market, tickers: tuple[str, ...]
) -> dict[str, set[str]]:
    """Every violation of the promise, as readable identifiers, by kind."""
    found: dict[str, set[str]] = {k: set() for k in VIOLATIONS}
    with Store.open_readonly(db) as ro:
        for key, ledger in ledgers.items():
            reader = ro.account(key)
            stored = {r.client_order_id: r for r in reader.orders_since(0.0)}
            venue = ledger.all_orders()
            by_coid = Counter(o.client_order_id for o in venue)
            by_intent = Counter(
                stored[o.client_order_id].intent_id for o in venue if o.client_order_id in stored
            )
            dups = [f"coid {c}" for c, n in by_coid.items() if n > 1]
            dups += [f"intent {i}" for i, n in by_intent.items() if n > 1]
            found["duplicate_orders"] |= {f"{key} {d}" for d in dups}
            for o in venue:
                rec = stored.get(o.client_order_id)
                if rec is None:
                    found["orders_unknown_to_store"].add(f"{key} {o.client_order_id} {o.symbol}")
                    continue
                if (o.status == "filled") != (rec.status == "filled") or (
                    rec.status == "filled" and not math.isclose(rec.filled, o.filled, rel_tol=1e-6)
                ):
                    what = f"store {rec.status} {rec.filled:g} vs venue {o.status} {o.filled:g}"
                    found["mis_settled_orders"].add(f"{key} {o.client_order_id} {what}")
            venue_coids = set(by_coid)
            for coid, rec in stored.items():
                if rec.status in ("pending", "unknown"):
                    found["unresolved_orders"].add(f"{key} {coid} {rec.status}")
                elif rec.status in ("filled", "open") and coid not in venue_coids:
                    found["mis_settled_orders"].add(
                        f"{key} {coid} store {rec.status}, not at venue"
                    )
            found["lost_positions"] |= _gaps(key, ledger, reader.open_positions(), market, tickers)
            positions = reader.open_positions() + reader.closed_positions_since(0.0)
            found["fills_without_position"] |= _unlinked(key, stored.values(), positions)
    return found


def _unlinked(key: str, orders, positions) -> set[str]:
    """Filled orders whose position never followed: an entry that opened none, or an exit
    whose position is still open or was closed by reconciliation rather than by the fill."""
    by_id = {p.id: p for p in positions}
    out = set()
    for rec in orders:
        if rec.status != "filled" or rec.filled <= 0:
            continue
        pos = by_id.get(rec.position_id)
        if rec.purpose == "entry":
            bad = pos is None or pos.entry_client_order_id != rec.client_order_id
        else:
            bad = pos is None or pos.status == "open" or pos.exit_price is None
            bad = bad or (pos.close_reason or "").startswith("not held at the venue")
        if bad:
            out.add(f"{key} {rec.purpose} {rec.client_order_id} {rec.symbol} filled {rec.filled:g}")
    return out


def _gaps(
    key: str, ledger: Ledger, positions, market: Market, tickers: tuple[str, ...]
) -> set[str]:
    """Holdings and open stored positions that disagree (holdings: balances by asset)."""
    held = {c: q for c, q in ledger.snapshot().items() if c in tickers}
    stored: dict[str, float] = Counter()
    for p in positions:
        stored[p.symbol.partition("/")[0]] += p.quantity
    gaps = set()
    for sym in set(held) | set(stored):
        price = market.price(f"{sym}/USD")
        h, s = (
            q if abs(q) * price >= DUST_USD else 0.0
            for q in (held.get(sym, 0.0), stored.get(sym, 0.0))
        )
        if abs(h - s) > QTY_TOLERANCE * max(abs(h), abs(s)):
            gaps.add(f"{key} {sym} venue {h:.6g} store {s:.6g}")
    return gaps
