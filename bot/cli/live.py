"""The live balance check of the check commands: every configured account's balance at once.

It runs the daemon's own funded check (``bot.daemon.funded``) with the venues' shared
request budgets (``bot.daemon.clients``) and market data (``bot.venue``: metadata and the
prices holdings are valued at), each account bounded by the call timeout, and an
isolation manager of its own whose report the commands show.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from bot.brokers.factory import load_adapters
from bot.daemon.clients import VenueClients
from bot.daemon.funded import FundedChecker, FundedResult
from bot.daemon.wiring import build_hub, circuit_config, default_factories
from bot.isolation.manager import AccountIsolationManager

if TYPE_CHECKING:
    from bot.cli.commands import Context

__all__ = ["live_check"]


def live_check(ctx: Context) -> tuple[list[FundedResult], AccountIsolationManager]:
    """Every loaded account's balance, all at once, bounded by the call timeout."""
    isolation = AccountIsolationManager(
        circuit_config(ctx.settings), clock=ctx.clock, redactor=ctx.redactor
    )
    load_adapters(ctx.accounts.specs)
    # Budgets, and each venue's shared market data (its metadata loaded once, holdings valued
    # at one ticker per held symbol for the venue, not one per account), as in the daemon:
    # the check shares the daemon's address, and so its per-IP limits. Notes go to stderr.
    with ExitStack() as closing:
        clients = VenueClients(clock=ctx.clock)
        closing.callback(clients.close)
        factories = default_factories(ctx.settings, ctx.clock, clients=clients)
        hub = build_hub(ctx.settings, ctx.accounts.specs, factories, ctx.clock)
        closing.callback(hub.close)
        checker = FundedChecker(
            clients.client,
            isolation,
            min_balance_usd=ctx.settings.min_balance_usd,
            timeout_seconds=ctx.settings.call_timeout_seconds,
            waited=clients.waited_seconds,
            clock=ctx.clock,
        )
        results = {r.account_key: r for r in checker.check(ctx.accounts.specs)}
    return [results[s.account.key] for s in ctx.accounts.specs], isolation
