"""The per-account overrides file: its format, its rules (the global ones), its problems named
with file, section and key, and which accounts each problem leaves without overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.brokers import venues
from bot.config.settings import load_settings
from bot.daemon.overrides import overrides_path, read_overrides
from tests.daemon.override_accounts import ALICE, BOB, CAROL, SPECS

SETTINGS = load_settings({"NIJA_TIMEFRAME": "15m", "NIJA_MIN_BALANCE_USD": "25"})


def read(tmp_path: Path, text: str):
    path = tmp_path / "overrides.toml"
    path.write_text(text, encoding="utf-8")
    return read_overrides(path, SPECS, SETTINGS)


def test_the_file_defaults_to_the_data_directory_and_may_be_named(tmp_path):
    assert overrides_path(load_settings({"NIJA_DATA_DIR": "/srv/nija"})) == Path(
        "/srv/nija/overrides.toml"
    )
    named = load_settings({"NIJA_OVERRIDES_FILE": "/etc/nija/o.toml"})
    assert overrides_path(named) == Path("/etc/nija/o.toml")


def test_no_file_means_no_overrides_and_the_global_settings_for_all(tmp_path):
    found = read_overrides(tmp_path / "overrides.toml", SPECS, SETTINGS)
    assert found.ok and not found.exists
    for key, tuning in found.tunings.items():
        assert tuning.is_base, key
        assert tuning.strategy.timeframe == "15m" and tuning.risk.min_balance_usd == 25.0
        assert tuning.risk.min_order_usd == venues.venue(key.split("/")[2]).min_order_usd


def test_a_venue_section_applies_to_its_accounts_and_an_accounts_own_section_wins(tmp_path):
    found = read(
        tmp_path,
        """
        ["*/*/KRAKEN"]
        max_positions = 3
        [ "*/*/KRAKEN".strategy ]
        adx_min = 25
        ema_mid = 30

        ["User/Alice/kraken"]   # spelled loosely, as the daemon reads keys
        risk_per_trade = 0.005
        max_positions = 2
        [ "User/Alice/kraken".strategy ]
        ema_fast = 25           # valid only beside the venue's ema_mid = 30
        """,
    )
    assert found.ok, found.problems
    alice, bob, carol = (found.tunings[k] for k in (ALICE, BOB, CAROL))
    assert (alice.risk.risk_per_trade, alice.risk.max_open_positions) == (0.005, 2)
    assert (alice.strategy.adx_min, alice.strategy.ema_mid, alice.strategy.ema_fast) == (25, 30, 25)
    assert alice.strategy.timeframe == "15m" and alice.risk.min_balance_usd == 25.0  # the rest
    assert alice.override is not None
    assert alice.override.document() == {
        "risk_per_trade": 0.005,
        "max_positions": 2,
        "strategy": {"adx_min": 25, "ema_mid": 30, "ema_fast": 25},
        "sections": ["*/*/KRAKEN", "User/Alice/kraken"],
    }
    assert (bob.risk.risk_per_trade, bob.risk.max_open_positions) == (0.01, 3)
    assert bob.strategy.ema_fast == 9 and bob.override and bob.override.sections == ("*/*/KRAKEN",)
    assert carol.is_base  # another venue


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ('[ "user/alice/KRAKEN" ]\nrisk_per_trade = 1.5', "[user/alice/KRAKEN] risk_per_trade",
         "risk_per_trade must be in (0, 1], got 1.5"),
        ('["user/alice/KRAKEN"]\nrisk_per_trade = nan', "[user/alice/KRAKEN] risk_per_trade",
         "must be finite"),
        ('["user/alice/KRAKEN"]\nrisk_per_trade = "1%"', "[user/alice/KRAKEN] risk_per_trade",
         "must be a number, got '1%'"),
        ('["user/alice/KRAKEN"]\nmax_positions = 0', "[user/alice/KRAKEN] max_positions",
         "max_positions must be at least 1, got 0"),
        ('["user/alice/KRAKEN"]\nmax_positions = 2.5', "[user/alice/KRAKEN] max_positions",
         "max_positions must be a whole number, got 2.5"),
        ('["user/alice/KRAKEN"]\nmax_positions = true', "[user/alice/KRAKEN] max_positions",
         "must be a number, got True"),
        ('["user/alice/KRAKEN"]\nmax_position = 2', "[user/alice/KRAKEN] max_position",
         "unknown key 'max_position' (did you mean max_positions?); allowed: risk_per_trade, "
         "max_positions, strategy"),
        ('["user/alice/KRAKEN"]\nema_fast = 8', "[user/alice/KRAKEN] ema_fast",
         'a strategy parameter: put it under [ "user/alice/KRAKEN".strategy ]'),
        ('["user/alice/KRAKEN"]\nstrategy = 3', "[user/alice/KRAKEN] strategy", "must be a table"),
        ('["user/alice/KRAKEN".strategy]\nema_fats = 8', "[user/alice/KRAKEN] strategy.ema_fats",
         "unknown key 'ema_fats' (did you mean ema_fast?); allowed: timeframe, history, ema_fast"),
        ('["user/alice/KRAKEN".strategy]\nema_fast = 8.5', "[user/alice/KRAKEN] strategy",
         "ema_fast must be an int, got 8.5"),
        ('["user/alice/KRAKEN".strategy]\nstop_atr = -1', "[user/alice/KRAKEN] strategy",
         "stop_atr must be positive and finite, got -1"),
        ('["user/alice/KRAKEN".strategy]\nema_fast = 30', "[user/alice/KRAKEN] strategy",
         "need ema_fast < ema_mid < ema_slow (the parameters set: ema_fast=30)"),
        ('["user/alice/KRAKEN".strategy]\ntimeframe = "0m"', "[user/alice/KRAKEN] strategy",
         "timeframe must be a timeframe like 1m, 5m, 1h, 1d, got '0m'"),
        ('["user/alice/KRAKEN"]\n["USER/ALICE/kraken"]', "[user/alice/KRAKEN]",
         "a second section [USER/ALICE/kraken] is for the same user/alice/KRAKEN: merge them"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_named_with_file_section_key_and_what_is_allowed(
    tmp_path, text, where, words
):
    found = read(tmp_path, text)
    assert not found.ok
    (problem,) = found.problems
    said = str(problem)
    assert said.startswith(f"{tmp_path / 'overrides.toml'}: {where}: "), said
    assert words in said
    # Only the account it is about is left without its overrides; it holds its entries.
    assert problem.accounts == (ALICE,)
    assert list(found.bad_accounts()) == [ALICE]
    alice = found.tunings[ALICE]
    assert alice.held and "no new entries" in alice.held and words in alice.held
    assert alice.override is None and alice.risk == found.tunings[BOB].risk  # the global ones
    assert found.tunings[BOB].is_base and found.tunings[CAROL].is_base


def test_a_wrong_venue_section_leaves_every_account_of_that_venue_without_overrides(tmp_path):
    found = read(tmp_path, '["*/*/KRAKEN".strategy]\nadx_min = 120\n["user/carol/COINBASE"]\n'
                 "max_positions = 1")  # fmt: skip
    (problem,) = found.problems
    assert str(problem).endswith("[*/*/KRAKEN] strategy: adx_min must be below 100 (the "
                                 "parameters set: adx_min=120)")  # fmt: skip
    assert problem.accounts == (ALICE, BOB)
    assert found.tunings[ALICE].held and found.tunings[BOB].held
    assert found.tunings[CAROL].risk.max_open_positions == 1 and not found.tunings[CAROL].held


def test_sections_that_name_no_account_of_this_daemon_hold_no_one(tmp_path):
    found = read(
        tmp_path,
        '["user/alcie/KRAKEN"]\nmax_positions = 1\n["*/*/KRAKN"]\n["user/*/KRAKEN"]\n'
        '["alice"]\n["user/alice/KRAKEN"]\nmax_positions = 4',
    )
    said = [str(p).split(": ", 1)[1] for p in found.problems]
    assert said == [
        "[user/alcie/KRAKEN]: this daemon has no account user/alcie/KRAKEN (it has "
        "user/alice/KRAKEN, user/bob/KRAKEN, user/carol/COINBASE)",
        "[*/*/KRAKN]: no venue 'KRAKN': the venues are ALPACA, BINANCE, COINBASE, KRAKEN, OKX, "
        "PAPER",
        '[user/*/KRAKEN]: not a section name: use an account key like "user/alice/KRAKEN", or '
        '"*/*/KRAKEN" for a whole venue',
        '[alice]: not a section name: use an account key like "user/alice/KRAKEN", or '
        '"*/*/KRAKEN" for a whole venue',
    ]
    assert all(p.accounts == () for p in found.problems)
    assert found.tunings[ALICE].risk.max_open_positions == 4 and not found.tunings[ALICE].held


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("max_positions = 1\n", "max_positions: a value outside any section"),
        ('["user/alice/KRAKEN"\nmax_positions = 1\n', "cannot be read: "),
        (b'["user/alice/KRAKEN"]\n# caf\xe9\n', "cannot be read: 'utf-8' codec can't decode"),
    ],
)
def test_a_file_that_cannot_be_read_as_sections_holds_every_account(tmp_path, text, words):
    path = tmp_path / "overrides.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    found = read_overrides(path, SPECS, SETTINGS)
    (problem,) = found.problems
    assert words in str(problem)
    assert problem.accounts == (ALICE, BOB, CAROL)
    assert all(t.held for t in found.tunings.values())


def test_every_problem_of_the_file_is_named_at_once(tmp_path):
    found = read(
        tmp_path,
        """
        ["*/*/KRAKEN".strategy]
        fast_ema = 3
        adx_min = 250
        ["user/alice/KRAKEN"]
        risk_per_trade = 0
        ["user/bob/KRAKEN".strategy]
        ema_fast = 60
        """,
    )
    where = sorted(f"[{p.section}] {p.key}" for p in found.problems)
    assert where == [
        "[*/*/KRAKEN] strategy",  # adx_min, for alice's merged parameters
        "[*/*/KRAKEN] strategy.fast_ema",
        "[user/alice/KRAKEN] risk_per_trade",
        "[user/bob/KRAKEN] strategy",  # ema_fast = 60 against the default ema_mid
    ]
    assert found.bad_accounts().keys() == {ALICE, BOB}
