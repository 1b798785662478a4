"""The HTTP API over real HTTP: auth, the accounts, and every action through the control desk."""

from __future__ import annotations

import json
import stat
from urllib.parse import quote

import pytest
import structlog
from structlog.testing import capture_logs

from bot.api.token import TOKEN_FILE, ApiToken, load_token
from bot.store.operator import OperatorStore
from tests.api.conftest import ALICE, BOB, TOKEN, ApiDaemon, wait_for

# -- auth --------------------------------------------------------------------------------------


def test_every_route_but_the_probes_needs_the_token_and_says_why(daemon):
    for path in ("/metrics", "/api/v1/accounts", f"/api/v1/accounts/{ALICE}", "/api/v1/venues"):
        missing = daemon.get(path, token=None)
        assert missing.status_code == 401, path
        assert "missing bearer token" in missing.json()["error"]
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = daemon.get(path, token="not-the-token-at-all")
        assert wrong.status_code == 401 and "wrong bearer token" in wrong.json()["error"]
    # /metrics reads an exact "Bearer <token>" from the raw header first; any other spelling
    # goes through the same check as every route.
    for spelling, status in ((f"bearer  {TOKEN} ", 200), (f"Bearer {TOKEN}x", 401),
                             (f"Bearer {TOKEN[:-1]}", 401), (f"Basic {TOKEN}", 401)):  # fmt: skip
        answer = daemon.get("/metrics", token=None, headers={"Authorization": spelling})
        assert answer.status_code == status, spelling
    basic = daemon.get("/api/v1/accounts", token=None, auth=("nija", TOKEN))
    assert basic.status_code == 401 and "use 'Bearer <token>'" in basic.json()["error"]
    assert daemon.post(f"/api/v1/accounts/{ALICE}/pause", token=None).status_code == 401
    assert ALICE not in daemon.sup.operator.paused  # nothing was done
    assert daemon.get("/healthz", token=None).status_code == 200
    assert daemon.get("/readyz", token=None).status_code in (200, 503)


def test_a_generated_token_is_kept_in_a_private_file_and_reused(tmp_path):
    token, generated = load_token(None, tmp_path)
    path = tmp_path / TOKEN_FILE
    assert generated and token.file == path and len(token.value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, generated_again = load_token(None, tmp_path)
    assert again.value == token.value and not generated_again
    path.write_text("short\n")  # damaged: replaced by a new one
    assert load_token(None, tmp_path)[0].value != token.value
    assert load_token("a-configured-token-value", tmp_path)[0].file is None
    assert token.id.startswith("token-") and token.value not in repr(token)
    assert ApiToken("x" * 20).matches("x" * 20) and not ApiToken("x" * 20).matches("y" * 20)


def test_without_a_configured_token_the_file_token_is_used_and_never_logged(tmp_path):
    d = ApiDaemon(tmp_path)
    with capture_logs() as logs:
        d.start()
    try:
        token = (tmp_path / TOKEN_FILE).read_text().strip()
        assert d.get("/api/v1/venues", token=token).status_code == 200
        (line,) = [e for e in logs if e["event"] == "http_token_file"]
        assert line["path"] == str(tmp_path / TOKEN_FILE)
        assert token not in json.dumps(logs, default=str)
        assert d.redactor.mask_values(f"t={token}") == "t=***"  # masked if anything echoes it
    finally:
        d.stop()


# -- reading -----------------------------------------------------------------------------------


def test_accounts_list_status_and_positions_and_one_account_in_full(daemon):
    listed = daemon.get("/api/v1/accounts").json()["accounts"]
    assert set(listed) == {ALICE, BOB}
    assert listed[ALICE]["health"] == "healthy" and listed[ALICE]["positions"] == []
    daemon.isolation.record_failure("user", "bob", "KRAKEN", ConnectionError("blip"))
    wait_for(lambda: not daemon.worker(BOB).health_events, what="bob's health change stored")
    # The key's slashes are path segments; %2F and any letter case work too.
    for path in (f"/api/v1/accounts/{BOB}", f"/api/v1/accounts/{quote(BOB, safe='')}",
                 "/api/v1/accounts/User/Bob/kraken"):  # fmt: skip
        doc = daemon.get(path).json()
        assert doc["account"] == BOB and doc["status"]["cycles"] >= 1, path
        assert doc["positions"] == [] and isinstance(doc["recent_orders"], list)
        assert [(h["old"], h["new"]) for h in doc["health_changes"]][:1] == [
            ("healthy", "degraded")
        ]


def test_venues_name_their_accounts_and_give_the_venue_layers_health(daemon):
    (kraken,) = daemon.get("/api/v1/venues").json()["venues"]
    assert kraken["name"] == "KRAKEN" and kraken["accounts"] == [ALICE, BOB]
    # status.json's "venues" entry, as the venue layer (bot/daemon/venue_watch.py) has it
    assert kraken["health"]["state"] == "up"
    assert set(kraken["health"]) == {
        "state", "since", "reason", "last_probe", "public_requests_per_min"
    }  # fmt: skip


def test_a_store_that_cannot_be_read_is_said_never_shown_as_no_positions(daemon):
    daemon.sup.db.path.rename(daemon.sup.db.path.with_name("aside.db"))
    doc = daemon.get(f"/api/v1/accounts/{ALICE}").json()
    assert doc["positions"] is None and "no database" in doc["store_error"]
    listed = daemon.get("/api/v1/accounts").json()
    assert listed["accounts"][ALICE]["positions"] is None and listed["store_error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/api/v1/accounts/user/zed/KRAKEN", 404, "this daemon has no account user/zed"),
        ("POST", "/api/v1/accounts/user/zed/KRAKEN/pause", 404, "no account user/zed/KRAKEN"),
        ("GET", "/api/v1/accounts/user/alice", 400, "malformed account key 'user/alice'"),
        ("GET", "/api/v1/accounts/user/ /KRAKEN", 400, "malformed account key"),
        ("POST", f"/api/v1/accounts/{ALICE}/explode", 404, "no action 'explode'"),
        ("GET", f"/api/v1/accounts/{ALICE}/pause", 405, "pause is an action: POST it"),
        ("POST", f"/api/v1/accounts/{ALICE}", 405, "POST is not allowed here"),
        ("GET", "/api/v2/everything", 404, "no such path /api/v2/everything"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(daemon, method, path, status, words):
    answer = daemon.request(method, path)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and answer.json()["status"] == status


# -- actions -----------------------------------------------------------------------------------


def test_pause_holds_entries_is_audited_and_resume_lifts_it(daemon):
    with capture_logs() as logs:
        answer = daemon.post(f"/api/v1/accounts/{ALICE}/pause")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["outcome"], body["before"], body["after"]) == ("done", "trading", "paused")
    assert daemon.sup.global_cap.held_for(ALICE) == "paused by the operator"
    assert daemon.sup.global_cap.held_for(BOB) is None
    wait_for(lambda: (r := daemon.worker(ALICE).last_result) and r.no_signal == "paused by the "
             "operator", what="alice's cycle to say she is paused")  # fmt: skip
    status = daemon.get(f"/api/v1/accounts/{ALICE}").json()["status"]
    token_id = f"http:{ApiToken(TOKEN).id}"
    assert status["paused"]["by"] == token_id
    (audit,) = [e for e in logs if e["event"] == "control_request"]
    assert audit["actor"] == token_id and audit["outcome"] == "done" and TOKEN not in str(audit)
    (row,) = OperatorStore(daemon.sup.db).actions(ALICE)
    assert (row.actor, row.action, row.outcome) == (token_id, "pause", "done")
    again = daemon.post(f"/api/v1/accounts/{ALICE}/pause").json()
    assert again["before"] == "paused" and "already paused" in again["message"]

    resumed = daemon.post(f"/api/v1/accounts/{ALICE}/resume").json()
    assert (resumed["before"], resumed["after"]) == ("paused", "trading")
    assert daemon.sup.global_cap.held_for(ALICE) is None
    assert daemon.get(f"/api/v1/accounts/{ALICE}").json()["status"]["paused"] is None
    actions = [a.action for a in OperatorStore(daemon.sup.db).actions(ALICE)]
    assert actions == ["resume", "pause", "pause"]


def test_the_audit_records_the_address_a_local_proxy_forwards(daemon):
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    with capture_logs() as logs:
        for path, headers in (("pause", forwarded), ("resume", {})):  # through a proxy; not
            answer = daemon.post(f"/api/v1/accounts/{ALICE}/{path}", headers=headers)
            assert answer.status_code == 200, answer.text
        scrape = daemon.get("/metrics", headers=forwarded)
    assert scrape.status_code == 200 and b"nija_cycles_total" in scrape.content
    audits = [e["client"] for e in logs if e["event"] == "control_request"]
    assert audits == ["203.0.113.9", "127.0.0.1"]  # from loopback, the proxy's word is taken


def test_a_pause_outlives_a_restart(tmp_path):
    first = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        assert first.post(f"/api/v1/accounts/{BOB}/pause").status_code == 200
    finally:
        first.stop()
    second = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    try:
        assert second.sup.global_cap.held_for(BOB) == "paused by the operator"
        assert (
            second.get(f"/api/v1/accounts/{BOB}")
            .json()["status"]["paused"]["by"]
            .startswith("http:token-")
        )
        assert second.sup.global_cap.held_for(ALICE) is None
    finally:
        second.stop()


def test_reset_closes_one_accounts_circuit(daemon):
    for _ in range(5):
        daemon.isolation.record_failure("user", "bob", "KRAKEN", ConnectionError("venue down"))
    answer = daemon.post(f"/api/v1/accounts/{BOB}/reset")
    assert answer.status_code == 200
    assert (answer.json()["before"], answer.json()["after"]) == ("quarantined", "healthy")


def test_reload_rebuilds_one_accounts_client_with_its_new_key(daemon):
    bob_builds = sum(1 for s in daemon.built if s.account.key == BOB)
    alice_thread = daemon.worker(ALICE).thread
    new_secret = "TkVXQUxJQ0VTRUNSRVQwM05FV0FMSUNFU0VDUkVUMDM="
    daemon.env["KRAKEN_USER_ALICE_API_SECRET"] = new_secret  # rotated in .env
    answer = daemon.post(f"/api/v1/accounts/{ALICE}/reload")
    assert answer.status_code == 200, answer.text
    assert "new credentials loaded" in answer.json()["message"]
    assert new_secret not in answer.text
    wait_for(
        lambda: (
            daemon.built[-1].account.key == ALICE
            and daemon.built[-1].credentials.api_secret == new_secret
        ),
        what="alice's new client",
    )
    # Built by her own thread (no restart), and masked everywhere from now on.
    assert daemon.worker(ALICE).thread is alice_thread and daemon.worker(ALICE).restarts == 0
    assert daemon.redactor.mask_values(new_secret) == "***"
    wait_for(lambda: daemon.worker(ALICE).reconciled, what="alice reconciled again")
    assert sum(1 for s in daemon.built if s.account.key == BOB) == bob_builds  # untouched


def test_a_reload_with_an_incomplete_key_is_refused_and_the_old_client_kept(daemon):
    old = daemon.sup.specs[ALICE]
    builds = len(daemon.built)
    del daemon.env["KRAKEN_USER_ALICE_API_SECRET"]
    answer = daemon.post(f"/api/v1/accounts/{ALICE}/reload")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert "KRAKEN_USER_ALICE_API_SECRET is missing" in error and "keeps its current" in error
    assert daemon.sup.specs[ALICE] is old
    cycles = daemon.worker(ALICE).cycles
    wait_for(lambda: daemon.worker(ALICE).cycles >= cycles + 2, what="alice trading on")
    assert len(daemon.built) == builds  # no client was built
    (row,) = OperatorStore(daemon.sup.db).actions(ALICE)
    assert (row.action, row.outcome) == ("reload", "refused")


def test_a_taken_port_stops_the_start_with_one_clear_line(tmp_path):
    import socket

    from bot.api.server import start_api
    from bot.errors import StartupError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = str(taken.getsockname()[1])
        d = ApiDaemon(tmp_path, NIJA_HTTP_PORT=port)
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}") as info:
            start_api(d.settings, d.sup, log=structlog.get_logger())
        assert "NIJA_HTTP_PORT" in str(info.value) and "NIJA_HTTP_ENABLED=false" in str(info.value)
    finally:
        taken.close()


def test_a_stop_ends_the_servers_sleep_at_once(tmp_path):
    d = ApiDaemon(tmp_path, NIJA_HTTP_TOKEN=TOKEN).start()
    server = d.api
    assert server is not None and server.url
    d.stop()  # joins for at most 3 s: the server sleeps 5 s between its ticks
    assert not server.serving
