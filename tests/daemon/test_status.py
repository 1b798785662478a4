"""bot.daemon.status: status.json is written masked and readable by its owner only."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from bot.daemon.funded import FundedResult
from bot.daemon.status import StatusWriter, read_status
from bot.daemon.status_document import account_entry
from bot.daemon.worker import ThreadState, WorkerSnapshot, why_equity_unknown
from bot.engine.trader import CycleResult
from bot.model import AccountRef, BrokerSpec
from bot.redact import MASK, Redactor

KEY = "K7qP2xZ9mW4vN8rT3yL6aB5cD1"


def test_status_json_masks_secrets_and_is_private_whatever_the_umask(tmp_path):
    document = {
        "accounts": {
            "user/alice/KRAKEN": {
                "last_error": f"Invalid key {KEY[:12]}",  # cut by someone else's truncation
                "failure_breakdown": {"authentication_error": 2},
                "funded": False,
            }
        },
        "config_errors": [{"account": "user/bob/OKX", "error": f"bad {KEY.lower()}"}],
    }
    path = tmp_path / "status.json"
    writer = StatusWriter(path, lambda: document, redactor=Redactor((KEY,)))
    old = os.umask(0)
    try:
        writer.write_now()
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    raw = path.read_text().lower()
    assert KEY[:8].lower() not in raw and KEY[-8:].lower() not in raw
    written = read_status(path)
    alice = written["accounts"]["user/alice/KRAKEN"]
    assert alice == {
        "last_error": f"Invalid key {MASK}",
        "failure_breakdown": {"authentication_error": 2},
        "funded": False,
    }
    assert written["config_errors"] == [{"account": "user/bob/OKX", "error": f"bad {MASK}"}]
    assert document["config_errors"][0]["error"] == f"bad {KEY.lower()}"  # a copy was masked


class CountingRedactor(Redactor):
    """Counts the strings it masks."""

    def mask_values(self, text: str) -> str:
        self.masked.append(text)
        return super().mask_values(text)


def test_an_unchanged_account_entry_is_not_masked_again(tmp_path):
    redactor = CountingRedactor((KEY,))
    object.__setattr__(redactor, "masked", [])
    alice = {"last_error": None, "cycles": 1}
    document = {"updated_at": "t1", "accounts": {"user/alice/KRAKEN": alice}}
    writer = StatusWriter(tmp_path / "status.json", lambda: document, redactor=redactor)
    writer.write_now()
    assert "user/alice/KRAKEN" in redactor.masked and "last_error" in redactor.masked
    redactor.masked.clear()
    document["updated_at"] = "t2"
    writer.write_now()
    assert redactor.masked == ["updated_at", "t2"]  # alice's entry: kept as masked
    document["accounts"]["user/alice/KRAKEN"] = {"last_error": f"bad key {KEY}", "cycles": 2}
    writer.write_now()
    written = read_status(tmp_path / "status.json")
    assert written["accounts"]["user/alice/KRAKEN"] == {
        "last_error": f"bad key {MASK}",
        "cycles": 2,
    }
    assert written["updated_at"] == "t2"


def test_a_large_daemon_rewrites_status_json_less_often():
    from bot.daemon.status import write_interval

    assert write_interval(5) == write_interval(50) == 0.5  # as before for most daemons
    assert write_interval(500) == 5.0  # a write of 500 accounts: 10-35 ms of CPU


def _as_json_dump_wrote(redactor: Redactor, document: dict) -> dict:
    """What status.json held when the whole masked document went through ``json.dump``."""
    return json.loads(json.dumps(redactor.mask_data(document), sort_keys=True, default=str))


def test_status_json_holds_the_documents_content_one_account_a_line(tmp_path):
    redactor = Redactor((KEY,))
    entry = {
        "thread": ThreadState.RUNNING,  # a str enum: its value
        "balance_usd": 1234.5,
        "cycles": 7,
        "funded": True,
        "last_error": None,
        "marks": {"BTC/USD": 97_000.25, "ETH/USD": 3_100.0},
        "orders_unknown": [{"client_id": "nija-1", "symbol": "BTC/USD"}],
        "note": 'naïve ✓ "quoted"\nnext line',
        "since": datetime(2026, 1, 1, tzinfo=UTC),  # not plain data: its str()
    }
    document = {
        "updated_at": "2026-01-01T00:00:00+00:00",
        "pid": 42,
        "accounts": {
            "user/zed/OKX": {**entry, "last_error": f"401 for key {KEY}"},
            "platform/platform/KRAKEN": entry,
            "user/alice/KRAKEN": {**entry, "cycles": 0, "marks": {}},
        },
        "venues": {"KRAKEN": {"state": "up", "reason": None}},
        "config_errors": [{"account": "user/bob/OKX", "error": f"bad {KEY}"}],
    }
    path = tmp_path / "status.json"
    writer = StatusWriter(path, lambda: document, redactor=redactor)
    for _write in range(2):  # the first write, then from the lines kept
        writer.write_now()
        raw = path.read_text()
        assert json.loads(raw) == _as_json_dump_wrote(redactor, document)
        assert KEY[:8] not in raw and KEY[-8:] not in raw
    expected = _as_json_dump_wrote(redactor, document)
    lines = raw.splitlines()
    top = [line for line in lines if line.startswith(' "')]
    assert [line.split('"')[1] for line in top] == sorted(document)
    accounts = [line for line in lines if line.startswith('  "')]
    assert [line.split('"')[1] for line in accounts] == sorted(document["accounts"])
    every = {**expected["accounts"], **expected}
    for line in accounts + top[1:]:  # each account, each other key whole on its own line
        assert json.loads("{" + line.rstrip(",") + "}").items() <= every.items()
    assert len(lines) == 1 + len(top) + len(accounts) + 2  # "{", " }" of accounts, "}"


def test_an_empty_daemon_and_a_document_without_accounts(tmp_path):
    path = tmp_path / "status.json"
    for document in ({"accounts": {}, "mode": "paper"}, {"mode": "paper"}, {"accounts": []}):
        StatusWriter(path, lambda doc=document: doc).write_now()
        assert json.loads(path.read_text()) == document


def test_only_the_changed_fields_of_an_entry_are_masked_again(tmp_path):
    redactor = CountingRedactor((KEY,))
    object.__setattr__(redactor, "masked", [])
    alice = {"thread": "running", "cycles": 1, "last_error": None, "venue_state": "up"}
    document = {"accounts": {"user/alice/KRAKEN": alice}}
    path = tmp_path / "status.json"
    writer = StatusWriter(path, lambda: document, redactor=redactor)
    writer.write_now()
    redactor.masked.clear()
    document["accounts"]["user/alice/KRAKEN"] = {**alice, "cycles": 2, "last_error": KEY}
    writer.write_now()
    assert sorted(redactor.masked) == sorted(["cycles", "last_error", KEY])
    written = read_status(path)["accounts"]["user/alice/KRAKEN"]
    assert written == {"thread": "running", "cycles": 2, "last_error": MASK, "venue_state": "up"}
    document["accounts"]["user/alice/KRAKEN"] = {**alice, "cycles": 2, "last_error": KEY}
    del document["accounts"]["user/alice/KRAKEN"]["venue_state"]  # a field gone: gone
    writer.write_now()
    assert "venue_state" not in read_status(path)["accounts"]["user/alice/KRAKEN"]


def test_a_secret_learned_later_is_masked_in_an_entry_that_did_not_change(tmp_path):
    """Credentials reloaded: the new key may already be in an entry masked before."""
    new_key = "N3wKeyReloaded4Zq8Lp2Vx7Rt"
    redactor = Redactor((KEY,))
    entry = {"last_error": f"venue said: unknown key {new_key}", "cycles": 3}
    document = {"accounts": {"user/alice/KRAKEN": entry}, "note": new_key}
    path = tmp_path / "status.json"
    writer = StatusWriter(path, lambda: document, redactor=redactor)
    writer.write_now()
    assert new_key in path.read_text()  # not a secret yet
    redactor.learn([new_key])
    writer.write_now()
    raw = path.read_text()
    assert new_key[:8] not in raw and new_key[-8:] not in raw
    assert read_status(path)["accounts"]["user/alice/KRAKEN"]["last_error"].endswith(MASK)


def test_an_account_gone_from_the_document_is_gone_from_the_file(tmp_path):
    document = {"accounts": {"user/alice/KRAKEN": {"cycles": 1}, "user/bob/OKX": {"cycles": 1}}}
    path = tmp_path / "status.json"
    writer = StatusWriter(path, lambda: document)
    writer.write_now()
    del document["accounts"]["user/bob/OKX"]
    writer.write_now()
    assert read_status(path)["accounts"] == {"user/alice/KRAKEN": {"cycles": 1}}


WAITS = "funds check waits: venue KRAKEN down: 2 of 2 accounts failed within 60s"
TIMED_OUT = "TimeoutError: no balance answer within 15s"


@pytest.mark.parametrize(
    ("result", "state", "reason"),
    [
        (FundedResult("k", False, error=WAITS, parked=True, venue_retry_in_seconds=30.0),
         "waits", WAITS),
        (FundedResult("k", False, error=TIMED_OUT, timed_out=True), "no_answer", TIMED_OUT),
        (FundedResult("k", False, error="AuthenticationError: EAPI:Invalid key"), "failed",
         "AuthenticationError: EAPI:Invalid key"),
        (None, "not_checked", None),
        (FundedResult("k", False, balance_usd=3.0), "answered", None),
        (FundedResult("k", True, balance_usd=50.0), "answered", None),
    ],
)  # fmt: skip
def test_an_account_entry_says_whether_funded_is_an_answer(result, state, reason):
    """A parked, timed-out or failed check leaves "funded" false (a boolean, as design.md
    has it) and says so beside it: its funds are unknown, not missing."""
    spec = BrokerSpec(AccountRef("user", "alice", "KRAKEN"), symbols=("BTC/USD",))
    entry = account_entry(spec, {}, result, None, live=True, interval_seconds=150.0)
    assert entry["funded"] is (result is not None and result.funded)
    assert entry["funds_check"] == state
    assert entry["funds_check_reason"] == reason


def _snapshot(cycles: int, equity: float | None, why: str | None = None) -> WorkerSnapshot:
    """A worker's snapshot after ``cycles`` cycles, its last one's equity and why it has none."""
    ms = 12.0 if cycles else None  # a cycle's result is there
    return WorkerSnapshot(ThreadState.RUNNING, cycles, None, ms, None, 0, None, 150.0, 0,
                          equity, {}, None, equity_unknown_reason=why)  # fmt: skip


PRICE = "equity unknown: the venue's price of a holding is not to be had"


@pytest.mark.parametrize("live", [True, False])
def test_a_balance_the_last_cycle_could_not_value_is_unknown_not_the_older_check(live):
    """Before any cycle the funded check's answer is the balance; once cycles run, theirs,
    and a cycle that could not value the account (its prices unavailable) leaves it unknown
    (null) rather than showing the check's hours-old figure as today's."""
    spec = BrokerSpec(AccountRef("user", "alice", "KRAKEN"), symbols=("BTC/USD",))
    checked = FundedResult("k", True, balance_usd=500.0)
    entries = [
        account_entry(spec, {}, checked, snap, live=live, interval_seconds=150.0)
        for snap in (None, _snapshot(0, None), _snapshot(3, 620.0), _snapshot(4, None, PRICE))
    ]
    assert [e["balance_usd"] for e in entries] == [500.0, 500.0, 620.0, None]
    assert [e["balance_unknown_reason"] for e in entries] == [None, None, None, PRICE]
    venue = [e["venue_balance_usd"] for e in entries]
    assert venue == ([500.0, 500.0, 620.0, None] if live else [500.0] * 4)


def test_why_a_cycle_has_no_equity_is_in_its_own_words():
    result = CycleResult("user/alice/KRAKEN", 0.0)
    assert why_equity_unknown(None) is None
    assert why_equity_unknown(result) == "the cycle read no balance"
    result.notes.append(PRICE)
    result.no_signal = "KRAKEN market data unavailable"
    assert why_equity_unknown(result) == PRICE
    result.blocked_reason = "venue KRAKEN down: parked"
    assert why_equity_unknown(result) == "venue KRAKEN down: parked"
    result.equity_usd = 10.0
    assert why_equity_unknown(result) is None
