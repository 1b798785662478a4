"""Valid but absurd settings: intervals under 1 s raised to 1 s, extreme call timeouts warned of."""

from __future__ import annotations

import pytest

from bot.config.limits import SettingNotice, apply_limits
from bot.config.settings import Settings, cycle_seconds_for, load_settings


def limited(**env: str) -> tuple[Settings, list[SettingNotice]]:
    return apply_limits(load_settings(env))


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("NIJA_CYCLE_SECONDS", "cycle_seconds"),
        ("NIJA_FUNDED_RECHECK_SECONDS", "funded_recheck_seconds"),
        ("NIJA_STATUS_LOG_SECONDS", "status_log_seconds"),
        ("NIJA_CB_TIMEOUT_SECONDS", "cb_timeout_seconds"),
    ],
)
def test_an_interval_under_a_second_is_raised_to_one_second_and_named(variable, field):
    settings, (notice,) = limited(**{variable: "0.2"})
    assert getattr(settings, field) == 1.0
    assert (notice.variable, notice.value, notice.used) == (variable, 0.2, 1.0)
    assert str(notice).startswith(f"{variable}=0.2 is under 1 s (") and "raised to 1 s" in str(
        notice
    )


def test_a_brokers_cycle_under_a_second_is_raised_too_and_the_others_kept():
    settings, (notice,) = limited(KRAKEN_CYCLE_SECONDS="0.05", OKX_CYCLE_SECONDS="30")
    assert cycle_seconds_for(settings, "KRAKEN") == 1.0
    assert cycle_seconds_for(settings, "OKX") == 30.0
    assert cycle_seconds_for(settings, "BINANCE") == 150.0
    assert (notice.variable, notice.used) == ("KRAKEN_CYCLE_SECONDS", 1.0)


@pytest.mark.parametrize(("value", "words"), [("301", "is over 300 s"), ("0.5", "is under 1 s")])
def test_an_extreme_call_timeout_is_kept_with_a_warning(value, words):
    settings, (notice,) = limited(NIJA_CALL_TIMEOUT_SECONDS=value)
    assert settings.call_timeout_seconds == float(value)
    assert notice.variable == "NIJA_CALL_TIMEOUT_SECONDS" and notice.used is None
    assert words in str(notice) and str(notice).endswith(": kept")


def test_sensible_values_pass_untouched():
    env = {
        "NIJA_CYCLE_SECONDS": "1",
        "KRAKEN_CYCLE_SECONDS": "1",
        "NIJA_FUNDED_RECHECK_SECONDS": "1",
        "NIJA_STATUS_LOG_SECONDS": "1",
        "NIJA_CB_TIMEOUT_SECONDS": "1",
        "NIJA_CALL_TIMEOUT_SECONDS": "300",
    }
    settings = load_settings(env)
    assert apply_limits(settings) == (settings, [])
    assert apply_limits(Settings()) == (Settings(), [])
