"""bot.daemon.status: status.json is written with the secrets masked."""

from __future__ import annotations

from bot.daemon.status import StatusWriter, read_status
from bot.redact import MASK, Redactor

KEY = "K7qP2xZ9mW4vN8rT3yL6aB5cD1"


def test_status_json_masks_secrets(tmp_path):
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
    writer.write_now()
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
