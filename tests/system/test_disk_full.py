"""A full disk under the real bot.py (the demo, through nija_testkit.chaos_launch).

Every status.json write (about once a second) and every cycle's store write fail with a
full disk's own errors (ENOSPC, SQLite's SQLITE_FULL). nija.log must say so once, not
every second; each store failure must count as its account's ``store_error``; and once
space is back, the daemon says so and status.json is written again.
"""

from __future__ import annotations

from nija_testkit.harness import clean_env, start_daemon, wait_for

ACCOUNTS = ("platform/platform/PAPER", "user/alice/PAPER", "user/bob/PAPER")
HEALTHY = ACCOUNTS[:2]  # bob's own demo faults may end a cycle before its store write


def test_a_full_disk_is_said_once_counted_as_store_errors_and_its_end_is_said(tmp_path):
    run = start_daemon(clean_env(), tmp_path, chaos=True)
    run.chaos(disk_full=[*ACCOUNTS, "status.json"])  # before the daemon has even started
    status = run.data_dir / "status.json"
    try:

        def full_cycles(key: str) -> int:
            return sum(
                1
                for e in run.events()
                if e.event == "cycle" and e.account == key and "disk is full" in str(e.fields)
            )

        # Two rounds of cycles (5 s apart) and every status write in between: all refused.
        wait_for(lambda: all(full_cycles(k) >= 2 for k in HEALTHY), 20, "two full-disk cycles")
        assert not status.exists()
        said = [e for e in run.events() if e.event == "disk_full"]
        assert len(said) == 1 and said[0].level == "error", said
        assert "free space" in said[0].fields["fix"]
        for e in run.events():
            if e.event == "cycle" and "disk is full" in str(e.fields):
                assert e.level == "warning"

        run.chaos()  # space again
        over = wait_for(
            lambda: [e for e in run.events() if e.event == "disk_full_over"], 15, "its end"
        )
        assert int(over[0].fields["not_logged"]) >= 4  # the refused writes nobody had to read
        wait_for(status.exists, 5, "status.json written again")
        for key in HEALTHY:
            breakdown = wait_for(lambda k=key: run.account(k).get("failure_breakdown"), 5, key)
            assert breakdown.get("store_error", 0) >= 2 and "unknown_error" not in breakdown, key
    finally:
        assert run.stop() == 0
    assert len([e for e in run.events() if e.event == "disk_full"]) == 1
