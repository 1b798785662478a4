"""What one account trades with: its risk limits and strategy parameters (``Tuning``).

Every account starts from the global settings (``base_tuning``: the documented risk limits,
``NIJA_MIN_BALANCE_USD``, its venue's minimum order, ``NIJA_STRATEGY`` and
``NIJA_TIMEFRAME``); the operator's per-account overrides file (``bot.daemon.overrides``)
may change some of them. A ``Tuning`` is immutable: the daemon hands a new one to an
account by swapping a reference, and the account's own thread applies it to its trader
between two cycles (``apply_tuning``), never inside one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from bot.brokers import venues
from bot.config.settings import Settings
from bot.engine.risk import RiskManager, RiskParams
from bot.engine.trader import AccountTrader
from bot.model import BrokerSpec
from bot.strategy.trend_pullback import StrategyParams, get_strategy

__all__ = ["RISK_KEYS", "AccountOverride", "Tuning", "apply_tuning", "base_tuning"]

# The overrides file's risk keys and the RiskParams fields they set.
RISK_KEYS: Mapping[str, str] = MappingProxyType(
    {"risk_per_trade": "risk_per_trade", "max_positions": "max_open_positions"}
)


@dataclass(frozen=True, slots=True)
class AccountOverride:
    """The overrides in force for one account, merged from the file's sections.

    ``risk``: (file key, value) pairs of ``RISK_KEYS``; ``strategy``: (parameter, value)
    pairs of ``StrategyParams``; ``sections``: the sections they came from, the venue's
    first (the account's own section wins).
    """

    risk: tuple[tuple[str, int | float], ...] = ()
    strategy: tuple[tuple[str, int | float | str], ...] = ()
    sections: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """As status.json and the API show it: ``{"risk_per_trade": 0.005, "strategy":
        {"adx_min": 25}, "sections": [...]}`` (only what is set)."""
        doc: dict[str, Any] = dict(self.risk)
        if self.strategy:
            doc["strategy"] = dict(self.strategy)
        doc["sections"] = list(self.sections)
        return doc


@dataclass(frozen=True, slots=True)
class Tuning:
    """One account's risk limits and strategy, and why they are what they are.

    ``override``: the overrides in force (None: the global settings). ``held``: why the
    account opens no new position (its overrides could not be applied at start-up); its
    exits, stops and order checks go on.
    """

    strategy_name: str
    risk: RiskParams
    strategy: StrategyParams
    override: AccountOverride | None = None
    held: str | None = None

    @property
    def is_base(self) -> bool:
        """True when nothing but the global settings is in it."""
        return self.override is None and self.held is None

    def effective(self) -> dict[str, Any]:
        """The overridable settings as the account uses them (the API's ``effective``)."""
        return {
            "risk_per_trade": self.risk.risk_per_trade,
            "max_positions": self.risk.max_open_positions,
            "strategy": asdict(self.strategy),
        }


def base_tuning(settings: Settings, spec: BrokerSpec) -> Tuning:
    """What an account trades with when no override applies to it."""
    return Tuning(
        strategy_name=settings.strategy,
        risk=RiskParams(
            min_balance_usd=settings.min_balance_usd,
            min_order_usd=venues.venue(spec.account.broker).min_order_usd,
        ),
        strategy=StrategyParams(timeframe=settings.timeframe),
    )


def apply_tuning(trader: AccountTrader, tuning: Tuning) -> None:
    """Give ``trader`` new risk and strategy objects built from ``tuning`` (its own thread,
    between two cycles). Its positions keep their stored stops: a strategy only ever moves
    a stop up, whatever its parameters."""
    trader.risk = RiskManager(tuning.risk, held=tuning.held)
    trader.strategy = get_strategy(tuning.strategy_name, tuning.strategy)
