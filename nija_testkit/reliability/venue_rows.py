"""The fault matrix's venue rows: one fault on every account of a whole venue.

A venue-wide outage (every OKX request answered 503) and a public-data failure (OKX's
candles answered 503 for everyone) hit both accounts of a second venue, OKX, beside the
matrix's four healthy Alpaca accounts. The daemon must take them for the venue's outage:
``venue_down`` once, both OKX accounts parked, no circuit opened, ``venue_up`` once after
the fault is lifted (a probe per NIJA_VENUE_PROBE_SECONDS); and the Alpaca accounts must
not miss a cycle (measured by the matrix as for every row).
"""

from __future__ import annotations

from bot.model import Credentials
from nija_testkit import candles as cs
from nija_testkit.emulator.server import Fault, Recorded
from nija_testkit.emulator.venues import VenueHandle, start_venue
from nija_testkit.harness import Event, account_env

VENUE = "OKX"
SECOND = Credentials("FAKE-OKX-KEY-VX-0002", "FAKE-OKX-SECRET-vx-24680", "FAKE-OKX-PASSPHRASE-VX")
OPENED = {"quarantined", "failing", "recovering"}  # a circuit open or half-open


class VenueAccounts:
    """OKX's emulator with two accounts: the platform account and ``user/vx/OKX``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.handle: VenueHandle = start_venue(VENUE)
        for symbol in self.handle.kind.symbols:  # candles that never move
            self.handle.venue.market.set_candles(symbol, cs.rows(cs.flat(price=100.0)))
        self.handle.venue.add_account(
            SECOND.api_key, SECOND.api_secret, {"USDT": 10_000.0}, passphrase=SECOND.passphrase
        )
        env.update(account_env(VENUE, None, self.handle.credentials))
        env.update(account_env(VENUE, "vx", SECOND))
        env.update(
            OKX_BASE_URL=self.handle.server.url, OKX_SYMBOLS=",".join(self.handle.kind.symbols)
        )
        self.keys = [f"platform/platform/{VENUE}", f"user/vx/{VENUE}"]

    def apply(self, route: str, fault: Fault) -> None:
        """``fault`` on ``route`` for every account of the venue (``all calls``: every route)."""
        self.handle.server.inject("*" if route == "all calls" else route, fault)

    def lift(self) -> None:
        self.handle.server.clear_faults()

    def hits(self, route: str, mono_on: float, mono_off: float) -> int:
        """Requests to the faulted route (every route for ``all calls``) while it was on."""
        taken: list[Recorded] = list(self.handle.server.requests)
        wanted = None if route == "all calls" else route
        return sum(
            1
            for r in taken
            if mono_on <= r.at <= mono_off and (wanted is None or r.route == wanted)
        )

    def stop(self) -> None:
        self.handle.stop()


def venue_problems(events: list[Event], keys: list[str], t_on: float, t_end: float) -> list[str]:
    """What broke the venue row's promises between ``t_on`` and ``t_end`` (epoch)."""
    window = [e for e in events if t_on <= e.at.timestamp() <= t_end]
    lines = [e.event for e in window if e.fields.get("venue") == VENUE]
    out = []
    for name in ("venue_down", "venue_up"):
        if lines.count(name) != 1:
            out.append(f"{name} logged {lines.count(name)} times, not once")
    for key in keys:
        moved = {
            e.fields.get("new")
            for e in window
            if e.event == "INDEPENDENT_health_changed" and e.account == key
        }
        if moved & OPENED:
            out.append(f"{key}: circuit opened ({', '.join(sorted(moved & OPENED))})")
    return out


def venue_state(status: dict) -> str | None:
    """The venue's state in a status.json document."""
    return status.get("venues", {}).get(VENUE, {}).get("state")


__all__ = ["VENUE", "VenueAccounts", "venue_problems", "venue_state"]
