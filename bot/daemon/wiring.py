"""Turn settings and an account spec into that account's own objects.

Every account gets new instances of everything: broker client, strategy, risk
manager, trader. Shared, and built for it: the isolation manager and the process-wide
position cap (per-account locks, a counter), and each venue's public market data and health
(``bot.venue``: one ``VenueHub`` per process, one ``Venue`` per venue; ``VenueWatch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.brokers.base import Broker, ValuationPrices
from bot.brokers.budget import Budgets
from bot.brokers.factory import create_public_broker, create_trading_broker
from bot.brokers.paper.broker import MarketData, PaperBroker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.config.settings import Settings, cycle_seconds_for
from bot.daemon.clients import VenueClients
from bot.daemon.tuning import base_tuning
from bot.engine.risk import GlobalPositionCap, RiskManager
from bot.engine.trader import AccountTrader
from bot.isolation.manager import AccountIsolationManager, CircuitBreakerConfig
from bot.model import BrokerSpec
from bot.store.writer import Store
from bot.strategy.trend_pullback import get_strategy
from bot.venue.health import VenueHealth
from bot.venue.hub import Venue, VenueHub
from bot.venue.market import DEFAULT_SETTLE_SECONDS, VenueMarket


def circuit_config(settings: Settings) -> CircuitBreakerConfig:
    """The circuit breaker settings from NIJA_CB_*."""
    return CircuitBreakerConfig(
        failure_threshold=settings.cb_failure_threshold,
        success_threshold=settings.cb_success_threshold,
        timeout_seconds=settings.cb_timeout_seconds,
        half_open_max_calls=settings.cb_half_open_max_calls,
        max_timeout_seconds=max(3600.0, settings.cb_timeout_seconds),
    )


def _never_waited(spec: BrokerSpec) -> float:
    return 0.0


@dataclass(frozen=True)
class BrokerFactories:
    """How to build the brokers: an account's to ask for its balance, an account's to trade
    through (given its venue's shared market data, which paper fills price from), and a
    venue's public-data client (from that venue's accounts' specs; None: the registry's
    adapter without credentials, ``create_public_broker``).

    ``market_clock`` is the time of the market they serve, which the accounts' traders
    decide by (a candle is closed by this clock): None means the daemon's own clock; the
    demo's synthetic market runs faster. ``waited`` is what an account has waited so far on
    what it shares with its venue (request budgets, the venue's metadata load): the funded
    check's deadline moves by it. ``settle_seconds``: how long after a candle's close the
    shared candles are fetched again (0 for a market final at the close).
    """

    venue: Callable[[BrokerSpec], Broker]
    trading: Callable[[BrokerSpec, VenueMarket], Broker]
    public: Callable[[Sequence[BrokerSpec]], MarketData] | None = None
    market_clock: Clock | None = None
    waited: Callable[[BrokerSpec], float] = _never_waited
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    # Hands the accounts' clients the venue layer's loaded metadata (venue name -> client).
    share_metadata: Callable[[Callable[[str], Broker | None]], None] | None = None
    # Hands them the venue's prices to value their holdings at (venue name -> its market).
    share_prices: Callable[[Callable[[str], ValuationPrices | None]], None] | None = None


def default_factories(
    settings: Settings, clock: Clock = SYSTEM_CLOCK, clients: VenueClients | None = None
) -> BrokerFactories:
    """Real venues; orders go to the paper engine unless NIJA_MODE=live.

    One venue client per account (``clients``, else a new ``VenueClients``): the funded
    check's, at every re-check, is the one its trading thread trades through; requests
    spend the request budgets.
    """
    clients = clients or VenueClients(clock=clock)

    def trading(spec: BrokerSpec, market: VenueMarket) -> Broker:
        return create_trading_broker(
            spec,
            live=settings.live,
            paper_balance_usd=settings.paper_balance_usd,
            clock=clock,
            venue=clients.client(spec),
            market=market,
        )

    def public(specs: Sequence[BrokerSpec]) -> MarketData:
        # The venue's shared data client spends the venue's one public (per-IP) budget.
        first = specs[0]
        shared = clients.public_budget(first.account.broker) if first.rate_limit else None
        budgets = Budgets(public=shared) if shared is not None else None
        return create_public_broker(specs, clock=clock, budgets=budgets)

    def share_metadata(source: Callable[[str], Broker | None]) -> None:
        clients.shared_metadata = source

    def share_prices(source: Callable[[str], ValuationPrices | None]) -> None:
        clients.shared_prices = source

    return BrokerFactories(
        venue=clients.client,
        trading=trading,
        public=public,
        waited=clients.waited_seconds,
        share_metadata=share_metadata,
        share_prices=share_prices,
    )


def build_hub(
    settings: Settings,
    specs: Sequence[BrokerSpec],
    factories: BrokerFactories,
    clock: Clock = SYSTEM_CLOCK,
) -> VenueHub:
    """One ``Venue`` per venue among ``specs``: the daemon builds it once, at start."""
    public = factories.public or (lambda group: create_public_broker(group, clock=clock))
    hub = VenueHub.build(
        specs,
        public,
        clock=factories.market_clock or clock,
        timeout_seconds=settings.call_timeout_seconds,
        settle_seconds=factories.settle_seconds,
    )
    if factories.share_metadata is not None:  # the accounts' clients adopt it: one load in all
        factories.share_metadata(lambda name: hub.get(name).market.metadata_client())
    if factories.share_prices is not None:  # one ticker per held symbol, not per account
        factories.share_prices(lambda name: hub.get(name).market if name in hub else None)
    return hub


class TraderFactory(Protocol):
    """Builds one account's ``AccountTrader`` in its own thread; ``make_trader`` is the real one.

    The supervisor takes one, so a test harness can wrap the real factory (chaos faults)
    instead of patching a module.
    """

    def __call__(
        self,
        spec: BrokerSpec,
        settings: Settings,
        broker: Broker,
        store: Store,
        isolation: AccountIsolationManager,
        global_cap: GlobalPositionCap,
        *,
        log: Any = None,
        should_stop: Callable[[], bool] = ...,
        clock: Clock = ...,
        venue: Venue | None = ...,
        venue_health: VenueHealth | None = ...,
    ) -> AccountTrader: ...


def make_trader(
    spec: BrokerSpec,
    settings: Settings,
    broker: Broker,
    store: Store,
    isolation: AccountIsolationManager,
    global_cap: GlobalPositionCap,
    *,
    log=None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Clock = SYSTEM_CLOCK,
    venue: Venue | None = None,
    venue_health: VenueHealth | None = None,
) -> AccountTrader:
    """The AccountTrader of one account, with its own strategy and risk objects, reading
    its ``venue``'s shared market data (None: market data of its own, from ``broker``) and
    gated by its venue's health (shared with the venue's other accounts)."""
    if isinstance(broker, PaperBroker):
        restore_paper_wallet(broker, store, settings.paper_balance_usd)
    # The global settings; its worker applies the account's overrides (bot.daemon.tuning).
    base = base_tuning(settings, spec)
    return AccountTrader(
        spec.account,
        broker,
        get_strategy(base.strategy_name, base.strategy),
        RiskManager(base.risk),
        store,
        isolation,
        clock,
        global_cap=global_cap,
        log=log,
        should_stop=should_stop,
        venue=venue,
        symbols=spec.symbols,
        venue_health=venue_health,
    )


def restore_paper_wallet(broker: PaperBroker, store: Store, starting_usd: float) -> None:
    """Paper positions live in the store: rebuild the paper wallet from them after a restart."""
    positions = store.open_positions()
    if not positions:
        return
    spent = sum(p.quantity * p.entry_price for p in positions)
    # Closed positions, and the parts of open ones already sold (their cash is in the wallet).
    realized = store.realized_pnl_since(0.0) + sum(p.realized_pnl_usd or 0.0 for p in positions)
    broker.restore(
        max(0.0, starting_usd + realized - spent),
        [(p.symbol, p.quantity, p.entry_price) for p in positions],
    )


def interval_for(settings: Settings, spec: BrokerSpec) -> float:
    """The account's cycle interval: <BROKER>_CYCLE_SECONDS, else NIJA_CYCLE_SECONDS."""
    return cycle_seconds_for(settings, spec.account.broker)
