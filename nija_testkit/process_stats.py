"""What a process costs, read from /proc: resident memory, threads, open files, CPU time.

Linux only (the daemon's deployment target). Used by scripts/soak.py and
scripts/bench_scale.py to watch the daemon from outside, the way an operator would.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStats:
    """One sample of a process."""

    at: float  # time.monotonic() of the sample
    rss_kb: int  # VmRSS: resident memory
    threads: int
    fds: int  # entries in /proc/<pid>/fd
    cpu_seconds: float  # utime + stime

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _status_fields(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        out[name] = value.strip()
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: the fields after it start past the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def sample(pid: int) -> ProcStats:
    """RSS, threads, fds and CPU seconds of a live ``pid`` (FileNotFoundError once it is gone)."""
    status = _status_fields(pid)
    return ProcStats(
        at=time.monotonic(),
        rss_kb=int(status["VmRSS"].split()[0]),
        threads=int(status["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        cpu_seconds=cpu_seconds(pid),
    )


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """Each live thread of ``pid``: its OS name (``comm``) and its CPU seconds so far.

    Read in nanoseconds from ``schedstat`` where the kernel has it (the time the thread ran),
    else from ``stat`` in clock ticks (10 ms: too coarse for a thread that runs a few ms at a
    time). A thread that ended is no longer listed: sample often to keep what it used.
    """
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[int(task.name)] = (name, _thread_cpu(task))
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended between the listing and the read
    return out


def _thread_cpu(task: Path) -> float:
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except (FileNotFoundError, PermissionError):
        if not task.exists():
            raise
    raw = (task / "stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS
