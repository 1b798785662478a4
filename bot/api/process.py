"""The ``process_*`` metrics: prometheus-client's ``ProcessCollector``'s, for fewer system calls.

The same six families, names, help texts and values (the CPU, memory, open files and start
time of the daemon, Linux's /proc). prometheus-client reads three files and lists the
process's file descriptors at every scrape: at 100 accounts (about 220 descriptors) that is
a quarter of a scrape's collection on cold caches, most of it the listing (measured,
scripts/profile_scrape.py). Here the start time is worked out once, the descriptor limit is
one ``getrlimit``, and the open descriptors are the size the kernel gives ``/proc/self/fd``
(Linux 6.2 and later; a listing on older kernels). The CPU time is ``times(2)`` and the
memory ``/proc/self/statm``, read again through a kept descriptor: /proc/self/stat, which
has both, is formatted from every thread's counters (about 12 us against 4 us, warm, with
120 threads; opening it was most of its cost on cold caches). tests/api/test_process.py
compares the two collectors.
"""

from __future__ import annotations

import os
import resource
import weakref
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ProcessMetrics", "fds_by_listing", "fds_by_size", "open_fds_reader"]

_PAGESIZE = resource.getpagesize()


def fds_by_listing(fd_dir: Path) -> int:
    """The process's open descriptors as prometheus-client counts them: a listing of
    ``fd_dir`` (/proc/self/fd), whose own descriptor is among those listed."""
    return len(os.listdir(fd_dir))


def fds_by_size(fd_dir: Path) -> int:
    """The same count from the size Linux 6.2 and later give /proc/<pid>/fd (the number of
    open descriptors), plus the one a listing would have opened: one ``stat``, no listing."""
    return os.stat(fd_dir).st_size + 1


def open_fds_reader(fd_dir: Path) -> Callable[[], int]:
    """``fds_by_size`` where the kernel gives the count, else ``fds_by_listing``. Older
    kernels give /proc/<pid>/fd the size 0, which a process that can read it never has."""
    reader = fds_by_size if os.stat(fd_dir).st_size > 0 else fds_by_listing
    return partial(reader, fd_dir)


class ProcessMetrics(Collector):
    """``process_*`` of the running process; nothing where /proc cannot be read (not Linux)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        self._start: float | None = None
        try:
            btime = _boot_time(proc / "stat")
            self._start = float(_stat_fields(proc / "self" / "stat")[19]) / ticks + btime
            self._open_fds = open_fds_reader(proc / "self" / "fd")
            self._statm = os.open(proc / "self" / "statm", os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, ValueError, IndexError):  # no /proc here: no process metrics
            self._start = None
        else:
            weakref.finalize(self, os.close, self._statm)

    def collect(self) -> Iterator[Metric]:
        """The six families, in prometheus-client's order."""
        if self._start is None:
            return
        try:
            pages = os.pread(self._statm, 256, 0).split()  # size resident shared ... (pages)
        except OSError:
            pass
        else:
            yield GaugeMetricFamily(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                value=float(int(pages[0]) * _PAGESIZE),
            )
            yield GaugeMetricFamily(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                value=float(int(pages[1]) * _PAGESIZE),
            )
            yield GaugeMetricFamily(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                value=self._start,
            )
            cpu = os.times()  # the process's, all threads (clock ticks, as /proc/self/stat)
            yield CounterMetricFamily(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                value=cpu.user + cpu.system,
            )
        try:
            open_fds = self._open_fds()
        except OSError:
            return
        yield GaugeMetricFamily(
            "process_open_fds", "Number of open file descriptors.", value=open_fds
        )
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        yield GaugeMetricFamily(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            value=float("inf") if soft == resource.RLIM_INFINITY else float(soft),
        )


def _stat_fields(path: Path) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command's name (which may hold spaces)."""
    with open(path, "rb") as stat:
        return stat.read().split(b")")[-1].split()


def _boot_time(path: Path) -> float:
    with open(path, "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise ValueError(f"no btime in {path}")
