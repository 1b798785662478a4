"""check_independent_broker_status.py with several nodes on one PostgreSQL: who holds each
account's lease, at which epoch, since when and until when, and which nodes stopped renewing."""

from __future__ import annotations

import os
import re

import pytest

from bot.cluster import leases, nodes
from bot.cluster.nodes import NodeIdentity
from bot.store.pg import PostgresDatabase
from tests.cli.scripts import (
    ALICE,
    INDEPENDENT,
    PLATFORM,
    account_status,
    base_env,
    line_of,
    run,
    run_json,
    write_status,
)

BOB = "user/bob/KRAKEN"


@pytest.fixture
def cluster(postgres_url, postgres_server):
    """node-a holds the platform account, node-b alice's; bob's lease is free."""
    db = PostgresDatabase(postgres_url, "paper")
    db.prepare()
    conn = db.connect(None, create=False)
    leases.ensure_accounts(conn, [PLATFORM, ALICE, BOB])
    for name, key in (("node-a", PLATFORM), ("node-b", ALICE)):
        nodes.register(conn, NodeIdentity(name, "x" + name, "host-" + name, 100), 30.0)
        assert leases.claim(conn, name, [key], [], 1, 30.0)
    yield conn
    conn.close()
    db.close()


def env(data_dir, postgres_url):
    return base_env(data_dir, NIJA_DATABASE_URL=postgres_url)


def node_a_status(data_dir) -> None:
    """node-a's status.json: it trades the platform account; alice's is node-b's."""
    accounts = {
        PLATFORM: account_status(PLATFORM, lease={"held": True, "epoch": 1}),
        ALICE: account_status(ALICE, funded=False, thread="not_started", lease={"held": False}),
    }
    write_status(data_dir, pid=os.getpid(), accounts=accounts, node_id="node-a")


def test_the_cluster_view_shows_every_lease_and_node_and_a_node_that_stopped_renewing(
    data_dir, postgres_url, postgres_server, cluster
):
    node_a_status(data_dir)
    cluster.execute(
        "UPDATE nodes SET last_seen = now() - interval '45 seconds' WHERE node_id = ?", ("node-b",)
    )
    proc = run(INDEPENDENT, env(data_dir, postgres_url))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert postgres_server.password not in out + proc.stderr
    assert 'Cluster: leases in PostgreSQL database "nija"' in out and "(this node: node-a)" in out
    assert "ACCOUNT" in out and "EXPIRES" in out
    lines = [line for line in out.splitlines() if line.startswith(PLATFORM)]
    assert any(
        line.split()[1:3] == ["node-a", "1"] and re.search(r"in (2\d|30) s$", line)
        for line in lines
    ), lines  # a 30 s TTL, claimed just now
    assert line_of(out, "node-b").split()[:3] == ["node-b", "host-node-b", "100"]
    assert "stopped renewing" in line_of(out, "node-b")
    assert "renewing" in line_of(out, "node-a")
    assert re.search(
        r"node node-b \(host-node-b, pid 100\) stopped renewing 4\d s ago and still owns 1", out
    )
    assert f"{BOB}: no node holds its lease (free)" in out
    # Alice's account is node-b's to trade: node-a's status does not call it unfunded.
    assert f"{ALICE}: not funded" not in out

    code, report = run_json(INDEPENDENT, env(data_dir, postgres_url))
    assert code == 1
    by_account = {row["account"]: row for row in report["cluster"]["leases"]}
    assert by_account[PLATFORM]["owner"] == "node-a" and by_account[PLATFORM]["epoch"] == 1
    assert 0 < by_account[PLATFORM]["expires_in_seconds"] <= 30  # by the server's clock
    assert by_account[ALICE]["owner_renewing"] is False
    assert by_account[BOB]["owner"] is None and by_account[BOB]["expires_in_seconds"] is None
    states = {n["node_id"]: n["state"] for n in report["cluster"]["nodes"]}
    assert states == {"node-a": "renewing", "node-b": "stopped renewing"}


def test_an_expired_lease_no_node_took_over_needs_attention_and_all_held_is_all_well(
    data_dir, postgres_url, cluster
):
    node_a_status(data_dir)
    assert leases.claim(cluster, "node-a", [BOB], [PLATFORM], 1, 30.0)
    code, report = run_json(INDEPENDENT, env(data_dir, postgres_url))
    assert code == 0, report["attention"]
    cluster.execute(
        "UPDATE leases SET expires_at = now() - interval '90 seconds' WHERE account_key = ?", (BOB,)
    )
    code, report = run_json(INDEPENDENT, env(data_dir, postgres_url))
    assert code == 1
    (reason,) = report["attention"]
    expected = rf"{BOB}: its lease \(node node-a, epoch 1\) expired 9\d s ago and no node has taken it over"
    assert re.fullmatch(expected, reason), reason


def test_the_leases_unreadable_is_said_not_hidden(data_dir, postgres_server):
    node_a_status(data_dir)
    url = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    code, report = run_json(INDEPENDENT, env(data_dir, url))
    assert code == 1
    assert report["cluster"]["error"] and "127.0.0.1:1" in report["cluster"]["error"]
    assert any(a.startswith("cannot read the leases") for a in report["attention"])
    assert postgres_server.password not in str(report)
