"""What an operator reads in nija.log, from the real bot.py running the demo.

Misspelt variable names and absurd values are warned of once, by name, never by value;
``grep INDEPENDENT nija.log`` shows every account's thread starting, its health changes
and its stop (the reference design's own verification); a failed cycle is one warning
line; no field is printed as None, and no line lists accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nija_testkit.harness import DaemonRun, Event, clean_env, start_daemon, wait_for

ACCOUNTS = ("platform/platform/PAPER", "user/alice/PAPER", "user/bob/PAPER")
BOB = "user/bob/PAPER"
# The value of a misspelt key: it must never be printed.
TYPO_VALUE = "FAKE-KRAKEN-KEY-UNDER-A-TYPO-0001"
ABSURD = {
    "NIJA_CYCLE_SECONDS": "0.2",
    "KRAKEN_CYCLE_SECONDS": "0.5",
    "NIJA_FUNDED_RECHECK_SECONDS": "0.5",
    "NIJA_STATUS_LOG_SECONDS": "0.5",
    "NIJA_CB_TIMEOUT_SECONDS": "0.1",
    "NIJA_CALL_TIMEOUT_SECONDS": "400",
}


@dataclass
class Finished:
    run: DaemonRun
    code: int
    lines: list[str]  # nija.log
    console: str

    def events(self, name: str) -> list[Event]:
        return [e for e in self.run.events() if e.event == name]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Finished:
    """The demo with two misspelt names and six absurd values, until every account has
    cycled and bob's health has changed; then SIGTERM."""
    tmp = tmp_path_factory.mktemp("operator-log")
    env = clean_env(KRAKN_API_KEY=TYPO_VALUE, NIJA_MDOE="live", **ABSURD)
    console = tmp / "console.log"
    run = start_daemon(env, tmp, output=console)
    try:

        def ready() -> bool:
            cycled = {e.account for e in run.events() if e.event == "cycle"}
            return cycled >= set(ACCOUNTS) and run.account(BOB).get("health") != "healthy"

        wait_for(ready, 20, "a cycle of every account and a health change of bob's")
    finally:
        code = run.stop()
    lines = run.log_path.read_text().splitlines()
    return Finished(run, code, lines, console.read_text(errors="replace"))


def test_misspelt_names_are_warned_of_once_with_the_name_meant_never_the_value(demo):
    warned = demo.events("unknown_variable")
    assert {e.fields["variable"]: e.fields["did_you_mean"] for e in warned} == {
        "KRAKN_API_KEY": "KRAKEN_API_KEY",
        "NIJA_MDOE": "NIJA_MODE",
    }
    assert len(warned) == 2 and {e.level for e in warned} == {"warning"}
    assert TYPO_VALUE not in "\n".join(demo.lines) + demo.console
    assert demo.run.status()["mode"] == "paper"  # which is why NIJA_MDOE=live is worth a warning


def test_absurd_values_are_named_once_each_and_intervals_raised_to_a_second(demo):
    named = {e.fields["variable"]: e for e in demo.events("setting_out_of_range")}
    assert set(named) == set(ABSURD) and len(demo.events("setting_out_of_range")) == len(ABSURD)
    for variable, event in named.items():
        assert event.level == "warning"
        assert float(event.fields["value"]) == float(ABSURD[variable])
        if variable == "NIJA_CALL_TIMEOUT_SECONDS":
            assert "used" not in event.fields and "over 300 s" in event.fields["problem"]
        else:
            assert event.fields["used"] == "1.0" and "under 1 s" in event.fields["problem"]


def test_grep_independent_shows_each_threads_start_health_changes_and_stop(demo):
    independent = [line for line in demo.lines if "INDEPENDENT" in line]
    for key in ACCOUNTS:
        mine = [line for line in independent if f"account={key} " in line]
        assert any("event=INDEPENDENT_thread_started" in line for line in mine), key
        assert any(
            'event=INDEPENDENT_thread_stopped reason="stop requested"' in line for line in mine
        ), key
    assert any(
        f"account={BOB} event=INDEPENDENT_health_changed old=healthy" in line
        for line in independent
    )
    assert demo.code == 0


def test_a_failed_cycle_is_one_warning_line_and_no_field_is_none(demo):
    cycles = demo.events("cycle")
    failed = [e for e in cycles if "error" in e.fields]
    assert failed, "bob's faults fail some of his cycles"
    assert {e.level for e in failed} == {"warning"}
    assert {e.level for e in cycles if e.fields["ok"] == "True"} == {"info"}
    # Only the cycle line carries the error that ended its cycle (the summary quotes it later).
    for error in {e.fields["error"] for e in failed}:
        said = [line for line in demo.lines if error in line and "event=status_account" not in line]
        assert len(said) == sum(e.fields["error"] == error for e in failed), said
    assert not [line for line in demo.lines if "=None" in line]


def test_no_line_lists_accounts(demo):
    for line in demo.lines:
        assert sum(key in line for key in ACCOUNTS) <= 1, line
    (banner,) = [line for line in demo.lines if "event=nija_starting" in line]
    assert "accounts=3" in banner and not any(key in banner for key in ACCOUNTS)
    (summary,) = demo.events("funded_summary")
    assert summary.fields == {
        "funded": "3", "not_funded": "0", "trading": "3", "waiting_for_venue": "0"
    }  # fmt: skip
