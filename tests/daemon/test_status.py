"""bot.daemon.status: status.json is written masked and readable by its owner only."""

from __future__ import annotations

import os

from bot.daemon.status import StatusWriter, read_status
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
    assert write_interval(500) == 5.0  # a write of 500 accounts: about 70 ms of CPU
