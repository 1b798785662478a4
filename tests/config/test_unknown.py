"""Variable names NIJA does not read, and the known name each is probably meant to be."""

from __future__ import annotations

import pytest

from bot.brokers.venues import env_venues
from bot.config.settings import load_accounts, load_settings, settings_variables
from bot.config.unknown import UnknownVariable, known_variables, unknown_variables
from tests.config.env_example import uncommented_env_example


def flagged(*names: str) -> dict[str, str | None]:
    return {u.name: u.did_you_mean for u in unknown_variables(names)}


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("KRAKN_API_KEY", "KRAKEN_API_KEY"),
        ("KRAKEN_API_SECRT", "KRAKEN_API_SECRET"),
        ("kraken_api_key", "KRAKEN_API_KEY"),
        ("NIJA_MDOE", "NIJA_MODE"),
        ("NIJA_CYCLE_SECOND", "NIJA_CYCLE_SECONDS"),
        ("MULTI_BROKER_INDEPENDANT", "MULTI_BROKER_INDEPENDENT"),
        ("COINBASE_SYMBOL", "COINBASE_SYMBOLS"),
        ("OKX_PASSPRASE", "OKX_PASSPHRASE"),
        ("KRAKEN_USER_ALICE_API_SECRT", "KRAKEN_USER_ALICE_API_SECRET"),
        ("KRAKN_USER_BOB_API_KEY", "KRAKEN_USER_BOB_API_KEY"),
        ("ALPACA_USER_JO_SMITH_PAPR", "ALPACA_USER_JO_SMITH_PAPER"),
    ],
)
def test_a_near_miss_is_flagged_with_what_it_was_meant_to_be(typo, meant):
    assert flagged(typo) == {typo: meant}


def test_a_typo_in_a_key_name_silently_drops_the_account_which_is_why_it_is_flagged():
    env = {"KRAKN_API_KEY": "FAKE-KEY-0001", "KRAKEN_API_SECRET": "RkFLRQ=="}
    assert load_accounts(env, load_settings(env)).specs == []  # the account is gone...
    (unknown,) = unknown_variables(env)  # ...and this says why
    assert str(unknown) == (
        "unknown variable KRAKN_API_KEY (did you mean KRAKEN_API_KEY?): NIJA does not read it"
    )
    assert "FAKE-KEY-0001" not in str(unknown) and "FAKE-KEY-0001" not in repr(unknown)


def test_an_unknown_name_of_ours_is_flagged_even_without_a_suggestion():
    assert flagged("NIJA_MESSAGE_BUS_X", "KRAKEN_FUTURES", "MULTI_BROKER_SOMETHING") == {
        "KRAKEN_FUTURES": None,
        "MULTI_BROKER_SOMETHING": None,
        "NIJA_MESSAGE_BUS_X": None,
    }


def test_every_name_nija_reads_is_known():
    names = set(settings_variables())
    for venue in env_venues():
        names |= set(venue.variables())
        for fld in venue.account_fields:
            names |= {venue.user_variable("ALICE", fld), venue.user_variable("bob_2", fld)}
    assert names >= known_variables()
    assert unknown_variables(names) == []


def test_other_programs_variables_are_left_alone():
    others = ("PATH", "HOME", "USER", "LANG", "PYTHONPATH", "DATA_DIR", "LOG_FILE", "HTTPS_PROXY")
    assert unknown_variables(others) == []


def test_each_name_once_sorted():
    assert unknown_variables(["NIJA_MDOE", "KRAKN_API_KEY", "NIJA_MDOE"]) == [
        UnknownVariable("KRAKN_API_KEY", "KRAKEN_API_KEY"),
        UnknownVariable("NIJA_MDOE", "NIJA_MODE"),
    ]


def test_env_example_names_only_variables_nija_reads():
    assert unknown_variables(uncommented_env_example()) == []
