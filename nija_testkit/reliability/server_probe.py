"""What a PostgreSQL server spends while it carries a load: CPU, WAL flushes, waits.

``ServerProbe`` reads, at the start and end of a measured window, the CPU seconds of the
server's processes (the postmaster and its children: backends, WAL writer, checkpointer,
from /proc), the machine's busy share (/proc/stat: the other work on a shared machine
included), and the server's own counters (``pg_stat_database`` transactions and rows,
``pg_stat_wal`` records, bytes, writes and flushes). Between the two, a thread samples
``pg_stat_activity`` every ``every`` seconds: how many client backends were running on
CPU, waiting on something (``IO:WALSync``, ``LWLock:WALWrite``, ``Lock:tuple``…) or idle
inside a transaction (waiting for the client). Linux only, like the daemon's deployment.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from nija_testkit.process_stats import cpu_seconds

__all__ = ["ServerProbe", "ServerWindow"]

_COUNTERS = (
    "SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.deadlocks,"
    " w.wal_records, w.wal_bytes::bigint AS wal_bytes, w.wal_write, w.wal_sync"
    " FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()"
)
_ACTIVITY = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (a postmaster's processes)."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            if parent == pid:
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # a process that ended meanwhile
    return total


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class ServerWindow:
    """What the server did over one window of ``seconds``."""

    seconds: float
    server_cpu_seconds: float | None  # None: the server's processes are not on this machine
    machine_busy: float  # share of all CPUs busy (every process on the machine)
    counters: dict[str, int]  # deltas of _COUNTERS
    backends: dict[str, float] = field(default_factory=dict)  # mean client backends per state
    samples: int = 0

    @property
    def commits_per_second(self) -> float:
        return self.counters["xact_commit"] / self.seconds

    @property
    def wal_flushes_per_second(self) -> float:
        return self.counters["wal_sync"] / self.seconds


class ServerProbe:
    """Measures one window on the server at ``url`` (``pid``: its postmaster, or None)."""

    def __init__(self, url: str, pid: int | None, every: float = 0.1) -> None:
        self.url = url
        self.pid = pid
        self.every = every
        self._stop = threading.Event()
        self._states: Counter[str] = Counter()
        self._samples = 0
        self._thread: threading.Thread | None = None
        self._start: tuple[float, float | None, tuple[int, int], dict[str, int]] | None = None

    def _counters(self) -> dict[str, int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            cur = conn.execute(_COUNTERS)
            row = cur.fetchone()
            assert row is not None and cur.description is not None
            return {col.name: int(v) for col, v in zip(cur.description, row, strict=True)}

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(_ACTIVITY).fetchall()
                self._samples += 1
                for state, kind, event in rows:
                    if state == "active":
                        self._states[f"{kind}:{event}" if kind else "running (CPU)"] += 1
                    elif state and state.startswith("idle in transaction"):
                        self._states["idle in transaction (the client's turn)"] += 1

    def start(self, now: float) -> None:
        """The window begins (``now``: time.monotonic())."""
        cpu = _tree_cpu(self.pid) if self.pid is not None else None
        self._start = (now, cpu, _machine_ticks(), self._counters())
        self._thread = threading.Thread(target=self._sample, name="server-probe", daemon=True)
        self._thread.start()

    def stop(self, now: float) -> ServerWindow:
        """The window ends; what the server did in it."""
        assert self._start is not None, "start() first"
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        began, cpu, (busy0, total0), counters0 = self._start
        busy1, total1 = _machine_ticks()
        counters = self._counters()
        n = max(1, self._samples)
        return ServerWindow(
            seconds=now - began,
            server_cpu_seconds=None if cpu is None else _tree_cpu(self.pid or 0) - cpu,
            machine_busy=(busy1 - busy0) / max(1, total1 - total0),
            counters={k: counters[k] - counters0[k] for k in counters},
            backends={k: round(v / n, 3) for k, v in self._states.most_common()},
            samples=self._samples,
        )
