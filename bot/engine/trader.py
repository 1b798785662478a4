"""One account's trading cycle.

venue gate → gate → balance → resolve open/ambiguous orders → manage exits → scan for
entries → place orders → persist → ``CycleResult``. A parked account (its venue is down,
or it waits for its staggered resume) sends nothing; a cancel-only or post-only venue
takes no entries and its exits wait (``bot.venue.health``). Every broker call passes the isolation
gate (``GuardedBroker``). A failing symbol is that symbol's problem for this cycle, and
so is a refused exit (``bot.engine.exits``); a failing balance or entry order call, a
refused gate, or a failing store write ends the cycle early and is recorded against this
account only (what no guard counted, and the closing record: ``bot.engine.bookkeeping``). Orders are sized to the venue's market rules (``bot.engine.holdings``), and
decisions are made on candles that had closed when they were fetched.

Candles, the tradable symbols, the market rules and the prices that value the account's
holdings are the venue's, shared by every account on it (``bot.venue``): fetched once,
never through this account's gate, and a failure to get them is the venue's, noted here
and charged to no account (a balance whose holding cannot be priced leaves the equity
unknown, never a made-up figure, and the cycle waits). Data older
than one candle is never traded on: entries wait, and an open position's stop and
target are checked against the account's own ticker (a guarded call) instead.

Each account owns its own broker, strategy, risk, store and trader objects:
nothing mutable is shared with another account except the process-wide position
cap, whose lock is never held across a broker call, and the venue's market data
(read-only snapshots; its locks are the venue's, never held across an account's call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from bot.brokers import venues
from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.engine.bookkeeping import CycleBook
from bot.engine.cycle import CycleResult  # re-exported: the daemon reads it from here
from bot.engine.exits import Exits
from bot.engine.guarded import GuardedBroker
from bot.engine.holdings import RulesBook
from bot.engine.orders import OrderDesk, PlannedOrder
from bot.engine.reconcile import Reconciler, ReconcileReport
from bot.engine.risk import AccountState, GlobalPositionCap, RiskManager
from bot.errors import VenueDataError, describe, is_disk_full
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager, classify_failure
from bot.model import AccountRef, Balance, MarketRules, Side
from bot.store.writer import LeaseLostError, OrderPurpose, PositionRecord, Store, StoreError
from bot.strategy.base import Intent, NoEntry, PositionView, Strategy
from bot.venue.health import VenueHealth, VenueParked, VenueState
from bot.venue.hub import Venue
from bot.venue.market import VenueMarket
from bot.venue.snapshot import CandleSnapshot

# Why a symbol with stale data takes no entry; it ranks behind any symbol the strategy judged.
STALE = NoEntry("market data stale", 1_000)


class AccountTrader:
    """Runs the cycle of one account. Not shared between threads."""

    def __init__(
        self,
        account: AccountRef,
        broker: Broker,
        strategy: Strategy,
        risk: RiskManager,
        store: Store,
        isolation: AccountIsolationManager,
        clock: Clock = SYSTEM_CLOCK,
        *,
        global_cap: GlobalPositionCap | None = None,
        log=None,
        should_stop: Callable[[], bool] = lambda: False,
        venue_health: VenueHealth | None = None,
        venue: Venue | None = None,
        symbols: Sequence[str] | None = None,
    ) -> None:
        """``venue``: what this account shares with the others on its venue (the daemon's
        ``VenueHub``); None: market data of its own, from ``broker`` as it answers, fetched
        again right at each candle's close (replays, tests). ``symbols``: the symbols
        configured for it (None: every one the venue lists)."""
        self.account = account
        self.strategy = strategy
        self.risk = risk
        self.store = store
        self.isolation = isolation
        self.clock = clock
        self.global_cap = global_cap or GlobalPositionCap(None)
        # Checked between symbols, never inside an order: shutdown cuts no order in half.
        self.should_stop = should_stop
        self.log = log or structlog.get_logger().bind(account=account.key)
        # With its venue's health (shared with the venue's other accounts): its gate and state.
        self.broker = GuardedBroker(broker, isolation, venue_health)
        # The venue's registry entry: its resend policy (a paper account: its data's venue).
        self.venue = venues.VENUES.get(account.broker, venues.PAPER)
        self.shared = venue or Venue(
            account.broker, VenueMarket(account.broker, broker, clock=clock, settle_seconds=0.0)
        )
        self.market = self.shared.market
        self.configured = tuple(symbols) if symbols else None
        self.rules = RulesBook(self.market)
        self.desk = OrderDesk(
            self.broker, store, clock, self.log, venue=self.venue, rules=self.rules
        )
        self.exits = Exits(self.desk, store, self.rules, clock, self.log)
        self.book = CycleBook(account, isolation, self.broker, store, self.desk, self.global_cap)
        self.reconciled = False
        self._loss_halt_told: str | None = None  # the UTC day the daily loss halt was logged

    # -- the cycle ------------------------------------------------------------------
    def run_cycle(self) -> CycleResult:
        """One cycle. Never raises for a broker, strategy or store failure: it records it."""
        started, began = self.clock.wall(), self.clock.monotonic()
        result = CycleResult(self.account.key, started)
        self.broker.reset_counters()
        try:
            self._cycle(result)
        # Not logged here: the caller logs the cycle's result once (the daemon's cycle line).
        except AccountBlockedError as blocked:
            result.ok, result.blocked_reason = False, blocked.reason
            result.retry_in_seconds = blocked.retry_in_seconds
            if isinstance(blocked, VenueParked) and blocked.resuming:
                result.resume_in_seconds = blocked.retry_in_seconds
        except LeaseLostError as lost:  # not the account's failure: its worker stops here
            result.ok, result.error, result.lease_lost = False, str(lost), lost.why
        except VenueDataError as exc:  # the venue's failure, told to the venue: charged to no one
            why = describe(exc, redactor=self.isolation.redactor)
            result.notes.append(f"waiting for the venue's market data ({why})")
            result.no_signal = f"{self.market.name} market data unavailable"
        except Exception as exc:
            result.ok, result.error = False, describe(exc, redactor=self.isolation.redactor)
            result.disk_full = is_disk_full(exc)
            self.book.record_unguarded(exc, "store" if isinstance(exc, StoreError) else "cycle")
        result.broker_calls = self.broker.calls
        result.errors = dict(self.broker.errors)
        result.duration_ms = (self.clock.monotonic() - began) * 1000.0
        self.book.close(result)
        if result.ok and not result.errors:
            # A cycle with no failure at all answers the failures that no broker call can
            # (strategy, store, thread): a strategy raising every cycle is never answered.
            self.broker.handle.record_success()
        return result

    def _cycle(self, result: CycleResult) -> None:
        self.broker.check_venue()  # a parked account sends nothing at all
        try:
            balance = self.broker.fetch_balance()
        except VenueDataError:  # a holding the venue's price cannot value now: charged to no one
            result.notes.append("equity unknown: the venue's price of a holding is not to be had")
            raise
        result.equity_usd = balance.usd_equity
        if not self.reconciled:
            self.reconcile(balance)
            if not self.reconciled:
                result.notes.append("reconciliation waiting for ambiguous orders")
                return
        else:
            for rec in self.desk.unresolved():
                self.desk.resolve(rec)
        busy = {r.symbol for r in self.desk.unresolved()}
        state = self.broker.venue_state
        if not state.takes_market_orders:  # look-ups and cancels go on; NIJA's orders are market
            result.no_signal = (
                f"venue {self.account.broker} {state.value}: no new entries, exits wait"
            )
            result.notes.append(result.no_signal)
        result.orders_placed += self._manage_exits(busy, balance, result, state)
        if state.takes_market_orders:
            result.orders_placed += self._scan_entries(balance.usd_equity, busy, result)

    def reconcile(self, balance: Balance | None = None) -> ReconcileReport:
        """Bring the store in line with the venue (done once, at the first cycle that can)."""
        report = Reconciler(
            self.broker,
            self.desk,
            self.store,
            self.strategy,
            self.symbols(),
            self.clock,
            self.log,
            rules=self.rules,
            market=self.market,
        ).run(balance)
        self.reconciled = report.done
        return report

    def symbols(self) -> list[str]:
        """The configured symbols the venue lists (from its shared market metadata)."""
        return self.market.listed(self.configured)

    # -- exits ----------------------------------------------------------------------
    def _manage_exits(
        self, busy: set[str], balance: Balance, result: CycleResult, venue: VenueState
    ) -> int:
        placed = 0
        for pos in self.store.open_positions():
            if self.should_stop():
                break
            if pos.symbol in busy:
                continue
            snap = self._candles(pos.symbol, result)
            if snap is None or snap.stale(self.clock.wall()):
                if venue.takes_market_orders:
                    placed += self.exits.protect(pos, balance, result.notes, result.marks)
                else:
                    result.notes.append(f"{pos.symbol}: exit waits (venue {venue.value})")
                continue
            intent = self._decide(pos.symbol, snap, _view(pos), result)
            if intent is None:
                continue
            if intent.kind == "adjust":
                self.store.update_position(
                    pos.id,
                    stop=intent.stop,
                    highest_close=intent.highest_close,
                    breakeven_done=intent.breakeven_done,
                )
                self.log.info("stop_moved", symbol=pos.symbol, stop=intent.stop)
            elif intent.kind == "exit" and not venue.takes_market_orders:
                result.notes.append(f"{pos.symbol}: exit waits (venue {venue.value})")
            elif intent.kind == "exit":
                placed += self.exits.attempt(
                    pos, intent.reason, intent.price, balance, result.notes
                )
        return placed

    # -- entries --------------------------------------------------------------------
    def _scan_entries(self, equity: float, busy: set[str], result: CycleResult) -> int:
        positions = self.store.open_positions()
        held = {p.symbol for p in positions}
        state = AccountState(
            equity_usd=equity,
            open_positions=len(positions),
            exposure_usd=sum(p.quantity * (p.highest_close or p.entry_price) for p in positions),
            entries_this_cycle=0,
            day_start_equity_usd=self._day_start_equity(equity),
        )
        self._tell_loss_halt(state)
        blocked = self.risk.entry_block(state) or self.global_cap.held_for(self.account.key)
        if blocked:
            result.notes.append(blocked)
            result.no_signal = blocked
            return 0
        waiting: list[tuple[str, NoEntry]] = []  # each scanned symbol's reason for no entry
        for symbol in self.symbols():
            if self.should_stop():
                break
            if symbol in held or symbol in busy:
                continue
            snap = self._candles(symbol, result)
            if snap is None:
                continue
            if snap.stale(self.clock.wall()):
                age = snap.age(self.clock.wall())
                result.notes.append(f"{symbol}: market data {age:.0f}s old; entry waits")
                waiting.append((symbol, STALE))
                continue
            intent = self._decide(symbol, snap, None, result)
            if intent is None or intent.kind != "enter":
                waiting.append((symbol, self._no_entry(snap)))
                continue
            assert intent.stop is not None  # an entry always carries its stop (see Intent)
            rules = self._rules(symbol, result)
            if rules is None:
                continue
            sizing = self.risk.size_entry(state, intent.price, intent.stop, rules)
            if not sizing.ok:
                result.notes.append(f"{symbol}: {sizing.reason}")
                waiting.append((symbol, NoEntry(sizing.reason, 0)))
                continue
            if not self.global_cap.try_reserve(self.account.key):
                refusal = (
                    self.global_cap.held_for(self.account.key)
                    or "process-wide position cap reached"
                )
                result.notes.append(refusal)
                result.no_signal = refusal
                return 0
            plan = PlannedOrder(
                intent_id=intent.intent_id,
                symbol=symbol,
                side=Side.BUY,
                quantity=sizing.quantity,
                purpose=OrderPurpose.ENTRY,
                stop=intent.stop,
                target=intent.target,
                initial_risk=intent.price - intent.stop,
                reason=intent.reason,
            )
            self.log.info("entry_signal", symbol=symbol, reason=intent.reason, size=sizing.reason)
            if self.desk.submit(plan) is None:
                result.no_signal = f"{symbol} entry already ordered"
                return 0
            return 1  # at most one entry a cycle
        all_held = set(self.symbols()) <= held | busy
        result.no_signal = _nearest(waiting) or ("every symbol held" if all_held else "no candles")
        return 0

    def _tell_loss_halt(self, state: AccountState) -> None:
        """Once a UTC day: the daily loss limit halted new entries (``daily_loss_halt``)."""
        day = self.clock.utc_now().date().isoformat()
        if self._loss_halt_told != day and self.risk.daily_loss_halted(state):
            self._loss_halt_told = day
            self.log.warning("daily_loss_halt", day=day, **self.risk.daily_loss(state))

    def _day_start_equity(self, equity: float) -> float:
        day = self.clock.utc_now().date().isoformat()
        start = self.store.day_start_equity(day)
        if start is None:
            self.store.set_day_start_equity(day, equity)
            return equity
        return start

    # -- per-symbol work --------------------------------------------------------------
    def _rules(self, symbol: str, result: CycleResult) -> MarketRules | None:
        """The venue's rules for ``symbol``, or None when they could not be read this cycle."""
        try:
            return self.rules.get(symbol)
        except AccountBlockedError:
            raise
        except Exception as exc:  # recorded by the guard; this symbol sits this cycle out
            result.notes.append(f"{symbol}: market rules failed ({classify_failure(exc).value})")
            return None

    def _candles(self, symbol: str, result: CycleResult) -> CandleSnapshot | None:
        """The venue's shared snapshot of the symbol's candles, or None when the venue's
        data failed (the venue's failure: this symbol sits this cycle out, charged to no one).

        Only the candles that had closed when they were fetched: one still forming then is
        dropped even if its minute has rolled over by the time the strategy decides.
        """
        try:
            # One more than needed: the newest is usually still forming and is dropped.
            snap = self.market.candles(symbol, self.strategy.timeframe, self.strategy.history + 1)
        except VenueDataError as exc:
            cause = exc.__cause__ or exc
            failure = classify_failure(cause, "candles")
            result.notes.append(f"{symbol}: candles failed ({failure.value})")
            self.log.warning("symbol_data_failed", symbol=symbol, error=type(cause).__name__)
            return None
        if snap.last_price is not None:
            result.marks[symbol] = snap.last_price
        return snap

    def _no_entry(self, snap: CandleSnapshot) -> NoEntry:
        """Why the strategy gives no entry on ``snap``: the cycle line's ``no_signal``."""
        try:
            why = self.strategy.no_entry(snap.candles, snap)
        except Exception as exc:  # only the explanation failed; the decision was recorded
            self.log.warning("no_signal_failed", error=describe(exc))
            return NoEntry("unexplained", 0)
        # None: it would enter now, but did not when it decided (the candles were the same).
        return why or NoEntry("unexplained", 0)

    def _decide(
        self, symbol: str, snap: CandleSnapshot, view: PositionView | None, result: CycleResult
    ) -> Intent | None:
        try:
            # The snapshot is the memo: indicators computed once for every account.
            return self.strategy.decide(symbol, snap.candles, view, self.clock.wall(), snap)
        except Exception as exc:  # a strategy bug is this account's failure, not a crash
            self.book.record_unguarded(exc, "strategy")
            result.notes.append(f"{symbol}: strategy failed ({type(exc).__name__})")
            error = describe(exc, redactor=self.isolation.redactor)
            self.log.error("strategy_failed", symbol=symbol, error=error)
            return None


def _nearest(waiting: list[tuple[str, NoEntry]]) -> str | None:
    """The symbol nearest an entry (fewest failing checks, first scanned on a tie) and why not."""
    if not waiting:
        return None
    symbol, why = min(waiting, key=lambda w: w[1].failing)
    return f"{symbol} {why.reason}"


def _view(pos: PositionRecord) -> PositionView:
    return PositionView(
        symbol=pos.symbol,
        quantity=pos.quantity,
        entry_price=pos.entry_price,
        stop=pos.stop,
        target=pos.target,
        # None when the store has no risk for it: the risk to its stop, as for an adopted one
        initial_risk=pos.entry_price - pos.stop if pos.initial_risk is None else pos.initial_risk,
        highest_close=pos.highest_close or pos.entry_price,
        opened_at=pos.opened_at,
        breakeven_done=bool(pos.breakeven_done),
    )
