"""A plain ccxt client of an emulated account, for tests that must send what the adapter
never would (an amount off the lot step, a raw endpoint call) to see the venue's answer."""

from __future__ import annotations

import ccxt

from bot.brokers.ccxt.config import redirect_urls
from nija_testkit.emulator.venues import VenueHandle


def raw_client(handle: VenueHandle) -> ccxt.Exchange:
    """A ccxt client signed with ``handle``'s credentials, every URL moved to its emulator."""
    creds = handle.credentials
    config = {"apiKey": creds.api_key, "secret": creds.api_secret, "enableRateLimit": False}
    if creds.passphrase:
        config["password"] = creds.passphrase
    exchange = getattr(ccxt, handle.broker.lower())(config)
    exchange.urls["api"] = redirect_urls(
        exchange.urls["api"], handle.server.url, getattr(exchange, "hostname", None)
    )
    exchange.session.trust_env = False  # loopback: never through a proxy
    return exchange
