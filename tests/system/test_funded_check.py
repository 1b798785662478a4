"""The real bot.py against the Kraken emulator with short call timeouts and the request
budgets on (NIJA's defaults): a Kraken account starts, its client and the venue's markets
serve every funded check and its trading thread, and an unfunded account is re-checked
through the same client without loading the markets again."""

from __future__ import annotations

from nija_testkit.harness import account_env, clean_env, start_daemon, wait_for
from nija_testkit.secrets import assert_no_secret

PLATFORM = "platform/platform/KRAKEN"
BOB = "user/bob/KRAKEN"


def test_a_kraken_account_starts_with_a_2s_call_timeout_and_budgets_on(venue_handle, tmp_path):
    kraken = venue_handle("KRAKEN")
    kraken.reset(balances={"USD": 10_000.0, "BTC": 0.1})  # a holding to price: one more request
    bob = kraken.kind.credentials()
    bob = type(bob)("FAKE-KRAKEN-KEY-BOB-0001", "RkFLRUtSQUtFTlNFQ1JFVEJPQg==")
    kraken.venue.add_account(bob.api_key, bob.api_secret, {"USD": 3.0})  # not funded
    env = clean_env(
        NIJA_CALL_TIMEOUT_SECONDS="2",
        NIJA_CYCLE_SECONDS="30",
        NIJA_FUNDED_RECHECK_SECONDS="1",
        KRAKEN_BASE_URL=kraken.server.url,
        KRAKEN_SYMBOLS="BTC/USD",
    )
    env |= account_env("KRAKEN", None, kraken.credentials) | account_env("KRAKEN", "bob", bob)
    assert "NIJA_REQUEST_BUDGETS" not in env  # the default: budgets on
    run = start_daemon(env, tmp_path)
    try:
        platform = wait_for(
            lambda: run.account(PLATFORM).get("cycles", 0) >= 1 and run.account(PLATFORM),
            30,
            "the Kraken account's first cycle",
        )
        assert platform["funded"] and platform["thread"] == "running"
        assert platform["health"] == "healthy" and platform["venue_balance_usd"] > 10_000.0
        # Bob is re-checked every second through his one client.
        wait_for(
            lambda: (
                len([e for e in run.events() if e.event == "funded_check" and e.account == BOB])
                >= 3
            ),
            20,
            "three checks of the unfunded account",
        )
        evs = run.events()
        (check,) = [e for e in evs if e.event == "funded_check" and e.account == PLATFORM]
        assert check.fields["funded"] == "True"
        # Its budget waits (the markets' second request, the BTC ticker) are not its timeout.
        assert float(check.fields["seconds"]) > 2.0
        # (Bob's checks every second may meet a loaded machine's 2 s; the platform's did not.)
        assert not [e for e in evs if e.event == "funded_check_failed" and e.account == PLATFORM]
        # One markets load for the venue: every check and the trading thread adopted it.
        assert len(kraken.server.requests_to("markets")) == 1
        assert len(kraken.server.requests_to("assets")) == 1
        assert run.account(BOB)["health"] == "healthy" and not run.account(BOB)["funded"]
    finally:
        code = run.stop()
    assert code == 0
    everything = run.log_path.read_text() + (run.data_dir / "status.json").read_text()
    assert_no_secret(everything, secrets=[*kraken.credentials.secrets(), *bob.secrets()])
