"""The real demo daemon (bot.py with no keys) run by an operator through its HTTP API and
nija_ctl.py: pausing user/alice/PAPER shows in status.json, is audited, and outlives a restart."""

from __future__ import annotations

import requests

from nija_testkit.harness import (
    DaemonRun,
    clean_env,
    run_ctl,
    start_daemon,
    wait_for,
)

ALICE = "user/alice/PAPER"


def api(run: DaemonRun) -> tuple[str, dict[str, str]]:
    """The running daemon's API base URL and the header its generated token goes in."""
    url = wait_for(run.api_url, 20, "the http_listening line")
    token = (run.data_dir / "http-token").read_text().strip()
    return url, {"Authorization": f"Bearer {token}"}


def paused(run: DaemonRun) -> dict | None:
    return run.account(ALICE).get("paused")


def test_pause_through_the_api_shows_in_status_json_and_outlives_a_restart(tmp_path):
    run = start_daemon(clean_env(), tmp_path)  # no keys: the demo
    try:
        url, auth = api(run)
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        answer = requests.post(f"{url}/api/v1/accounts/{ALICE}/pause", headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: paused(run), 20, "alice paused in status.json")
        assert paused(run)["by"].startswith("http:token-")
        # The same actions from the command line, through the same control desk.
        code, report = run_ctl(tmp_path, run.data_dir, "resume", ALICE)
        assert code == 0 and (report["before"], report["after"]) == ("paused", "trading")
        wait_for(lambda: run.account(ALICE).get("paused", 0) is None, 20, "alice resumed")
        code, report = run_ctl(tmp_path, run.data_dir, "pause", ALICE)
        assert code == 0, report
        metrics = requests.get(f"{url}/metrics", headers=auth, timeout=10).text
        assert f'nija_account_paused{{account="{ALICE}",broker="PAPER"}} 1.0' in metrics
        code, report = run_ctl(tmp_path, run.data_dir, "reload", ALICE)
        assert code == 2 and "a demo account has none" in report["error"]
    finally:
        assert run.stop() == 0
    audit = [e for e in run.events() if e.event == "control_request"]
    assert [(e.fields["action"], e.fields["actor"].split("-")[0]) for e in audit] == [
        ("pause", "http:token"),
        ("resume", "ctl:pid"),
        ("pause", "ctl:pid"),
        ("reload", "ctl:pid"),
    ]
    again = start_daemon(clean_env(), tmp_path)
    try:
        wait_for(lambda: again.status().get("pid") == again.proc.pid, 20, "the new status.json")
        assert paused(again)["by"].startswith("ctl:pid-")
        assert any(e.event == "account_paused" and e.account == ALICE for e in again.events())
    finally:
        assert again.stop() == 0
