"""NIJA's ``process_*`` metrics are prometheus-client's ProcessCollector's, for less work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from bot.api.process import ProcessMetrics, fds_by_listing, fds_by_size, open_fds_reader

FD_DIR = Path("/proc/self/fd")


def _lines(registry: CollectorRegistry) -> dict[str, str]:
    """Each sample's name (or a help or type line) -> its value (the whole line for #)."""
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("#"):
            out[line] = line
        else:
            name, value = line.rsplit(" ", 1)
            out[name] = value
    return out


def test_the_same_families_and_values_as_the_librarys_process_collector():
    ours, library = CollectorRegistry(), CollectorRegistry()
    ours.register(ProcessMetrics())
    ProcessCollector(registry=library)
    mine, theirs = _lines(ours), _lines(library)
    assert list(mine) == list(theirs)  # names, help and type lines, in the library's order
    assert len(mine) == 6 * 3
    for name in ("process_start_time_seconds", "process_max_fds", "process_open_fds"):
        assert mine[name] == theirs[name], name  # nothing opened a file in between
    for name in ("process_virtual_memory_bytes", "process_resident_memory_bytes"):
        assert abs(float(mine[name]) - float(theirs[name])) <= 16 << 20, name
    assert (
        0
        < float(mine["process_cpu_seconds_total"])
        <= float(_lines(library)["process_cpu_seconds_total"])
    )


def test_open_descriptors_are_counted_as_a_listing_counts_them_and_follow_changes():
    if os.stat(FD_DIR).st_size == 0:
        pytest.skip("this kernel (before Linux 6.2) gives /proc/self/fd no size: listing only")
    assert open_fds_reader(FD_DIR).func is fds_by_size
    before = fds_by_size(FD_DIR)
    assert before == fds_by_listing(FD_DIR)
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
    try:
        assert fds_by_size(FD_DIR) == before + 3 == fds_by_listing(FD_DIR)
    finally:
        for fd in opened:
            os.close(fd)
    assert fds_by_size(FD_DIR) == before == fds_by_listing(FD_DIR)


def test_no_proc_no_process_metrics(tmp_path):
    registry = CollectorRegistry()
    registry.register(ProcessMetrics(proc=tmp_path))
    assert generate_latest(registry) == b""


def test_memory_is_read_again_at_every_collection_through_the_kept_descriptor():
    metrics = ProcessMetrics()

    def resident() -> float:
        families = {f.name: f for f in metrics.collect()}
        return families["process_resident_memory_bytes"].samples[0].value

    before = resident()
    grown = bytearray(64 << 20)  # touched: resident at once
    assert resident() >= before + (60 << 20)
    del grown
