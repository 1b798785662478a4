"""The three accounts the overrides' tests give overrides to: two on Kraken, one on Coinbase
(the file's rules and the daemon's reloads are tested on the same specs)."""

from __future__ import annotations

from bot.model import AccountRef, BrokerSpec

ALICE, BOB, CAROL = "user/alice/KRAKEN", "user/bob/KRAKEN", "user/carol/COINBASE"
SPECS = {
    key: BrokerSpec(AccountRef(*key.split("/")), symbols=("BTC/USD",), timeout_seconds=1.0)
    for key in (ALICE, BOB, CAROL)
}
