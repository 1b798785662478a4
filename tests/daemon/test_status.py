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
