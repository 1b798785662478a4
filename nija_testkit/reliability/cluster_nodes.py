"""The cluster chaos run's nodes: real bot.py processes sharing one PostgreSQL.

A ``Node`` is one name (``NIJA_NODE_ID``) with its own data directory; each start is a new
process (a new log file ``run-NNN.log``), and every line any of them logs is kept, tagged
with the process that wrote it (``NodeLine``), read incrementally (``LogTail``). The
``Cluster`` holds the nodes and answers, from the ``leases`` table and each node's
status.json, whether the accounts are settled: every account held by a running node,
traded there, and the counts within one account of the fair share.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nija_testkit.harness import DaemonRun, Event, parse_line, start_daemon

UP, STOPPED, DEAD, GONE = "up", "stopped", "dead", "gone"


@dataclass(frozen=True, slots=True)
class NodeLine:
    """One nija.log line and the process that wrote it."""

    node: str
    run: int  # the node's start it came from (1, 2, ...)
    event: Event

    @property
    def wall(self) -> float:
        return self.event.at.timestamp()


class LogTail:
    """The complete lines a growing log file has gained since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[Event]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for the next read
        events = (parse_line(raw.decode(errors="replace")) for raw in lines)
        return [e for e in events if e is not None]


class Node:
    """One node name; its processes one after another."""

    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = env | {"NIJA_NODE_ID": name, "NIJA_DATA_DIR": str(self.dir / "data")}
        self.runs = 0
        self.run: DaemonRun | None = None
        self.state = GONE
        self.lines: list[NodeLine] = []
        self._tails: list[tuple[int, LogTail]] = []

    def start(self) -> None:
        self.runs += 1
        log = self.dir / f"run-{self.runs:03d}.log"
        self.run = start_daemon(
            self.env | {"NIJA_LOG_FILE": str(log)}, self.dir, output=self.dir / "console.log"
        )
        self._tails.append((self.runs, LogTail(log)))
        self.state = UP

    @property
    def pid(self) -> int:
        assert self.run is not None
        return self.run.proc.pid

    def alive(self) -> bool:
        return self.run is not None and self.run.alive()

    def kill(self) -> None:
        """SIGKILL (a stopped process dies too)."""
        assert self.run is not None
        self.run.kill()
        self.state = DEAD

    def pause(self) -> None:
        """SIGSTOP: the process freezes where it is, its sockets open (a zombie to be)."""
        os.kill(self.pid, signal.SIGSTOP)
        self.state = STOPPED

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.state = UP

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM and wait: the graceful stop (leases handed back); its exit code, or None
        when it had to be killed after ``timeout``."""
        assert self.run is not None
        self.state = GONE
        try:
            return self.run.stop(timeout)
        except subprocess.TimeoutExpired:
            return None

    def poll(self) -> list[NodeLine]:
        """The lines its processes logged since the last poll (also kept in ``lines``)."""
        new = [NodeLine(self.name, run, e) for run, tail in self._tails for e in tail.read()]
        self.lines += new
        return new

    def trading(self) -> set[str]:
        """The accounts its status.json says it holds, trades and runs a thread for."""
        if self.run is None:
            return set()
        accounts = self.run.status().get("accounts", {})
        return {
            k
            for k, a in accounts.items()
            if (a.get("lease") or {}).get("held")
            and (a.get("lease") or {}).get("trading")
            and a.get("thread") == "running"
        }

    def close(self) -> None:
        """Whatever state it is in, no process is left behind."""
        if self.run is not None and self.run.alive():
            if self.state == STOPPED:
                self.resume()
            self.run.kill()


def owners(url: str) -> dict[str, str | None]:
    """Each account's lease owner now, by the database's clock (None: free or expired)."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        rows = conn.execute(
            "SELECT account_key, CASE WHEN expires_at > now() THEN owner END FROM leases"
        ).fetchall()
    return {str(k): (str(o) if o is not None else None) for k, o in rows}


def unbalanced(counts: Counter[str], names: list[str], accounts: int) -> list[str]:
    """The nodes whose share is more than one account from fair (accounts / nodes)."""
    fair = accounts / max(1, len(names))
    return [f"{n} holds {counts[n]} (fair {fair:g})" for n in names if abs(counts[n] - fair) > 1]


class Cluster:
    """The nodes on one database."""

    def __init__(self, root: Path, env: dict[str, str], url: str, accounts: list[str]) -> None:
        self.root = root
        self.env = env
        self.url = url
        self.accounts = sorted(accounts)
        self.nodes: dict[str, Node] = {}

    def add(self, name: str) -> Node:
        node = self.nodes[name] = Node(name, self.root, self.env)
        node.start()
        return node

    def up(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state == UP]

    def poll(self) -> list[NodeLine]:
        return [line for n in self.nodes.values() for line in n.poll()]

    def lines(self) -> list[NodeLine]:
        self.poll()
        return sorted((x for n in self.nodes.values() for x in n.lines), key=lambda x: x.wall)

    def unsettled(self) -> str | None:
        """Why the accounts are not settled now (None: settled): an up node that died, an
        account not held by an up node or not traded there, a share off fair by more than one."""
        up = self.up()
        if dead := [n.name for n in up if not n.alive()]:
            return f"node(s) exited by themselves: {', '.join(dead)}"
        try:
            held = owners(self.url)
        except psycopg.Error as exc:
            return f"leases unreadable: {type(exc).__name__}"
        names = [n.name for n in up]
        orphans = sorted(k for k in self.accounts if held.get(k) not in names)
        if orphans:
            return f"{len(orphans)} account(s) not held by a running node, e.g. {orphans[0]}"
        counts = Counter(o for o in held.values() if o is not None)
        if off := unbalanced(counts, names, len(self.accounts)):
            return "; ".join(off)
        for node in up:
            mine = {k for k, o in held.items() if o == node.name}
            if missing := mine - node.trading():
                return f"{node.name}: {len(missing)} held account(s) not trading yet"
        return None

    def shares(self) -> dict[str, int]:
        """How many accounts each running node holds now (the leases table)."""
        counts = Counter(o for o in owners(self.url).values() if o is not None)
        return {n.name: counts[n.name] for n in self.up()}

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
