"""Every request ccxt sends spends the account's request budgets first.

ccxt sends each REST request through ``Exchange.fetch2(path, api, method, params, config)``
(its ``request`` and every implicit endpoint method call it); ``api`` tells a public
endpoint from a private one, and ``calculate_rate_limiter_cost`` gives ccxt's own cost of
the endpoint, which the venue's ``RequestCosts`` turns into costs on NIJA's budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.brokers.budget import Budgets
from bot.brokers.ccxt.config import RequestCosts


def is_public(api: Any) -> bool:
    """True for ccxt's public API groups (``public``, ``dapiPublic``, ...), whatever shape
    ``api`` comes in (a name or a list whose first item is the name)."""
    name = api[0] if isinstance(api, list | tuple) and api else api
    return str(name).lower().endswith("public")


def spend_per_request(
    exchange: Any,
    budgets: Budgets,
    costs: RequestCosts,
    after_wait: Callable[[float], None],
) -> None:
    """Make every request of ``exchange`` spend ``budgets`` before it is sent.

    ``after_wait(seconds)`` runs after each spend, with the seconds the request waited
    (0 when none), before the request is sent.
    """
    fetch2 = exchange.fetch2  # the bound method of the class; ours shadows it on the instance

    def fetch2_within_budget(
        path: str,
        api: Any = "public",
        method: str = "GET",
        params: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Any:
        params = {} if params is None else params
        config = {} if config is None else config
        ccxt_cost = float(exchange.calculate_rate_limiter_cost(api, method, path, params, config))
        on_ip, on_key = costs(is_public(api), method, path, ccxt_cost)
        after_wait(budgets.spend(public=on_ip, private=on_key))
        return fetch2(path, api, method, params, config)

    exchange.fetch2 = fetch2_within_budget


__all__ = ["is_public", "spend_per_request"]
