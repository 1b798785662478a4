"""The data directory's lock: one holder at a time, released by the kernel, and the pid it keeps."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.daemon.lock import LOCK_FILE, DataDirLock, DataDirLocked, holder_pid
from bot.errors import StartupError


def test_the_holder_writes_its_pid_and_a_clean_release_empties_the_file(tmp_path):
    data = tmp_path / "data"
    lock = DataDirLock.acquire(data)  # creates the directory
    assert lock.previous_pid is None
    assert (data / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert holder_pid(data) == os.getpid()
    lock.release()
    assert (data / LOCK_FILE).read_text() == "" and holder_pid(data) is None
    lock.release()  # twice is harmless


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    first = DataDirLock.acquire(tmp_path)
    try:
        # flock belongs to the open file: a second open in this very process is refused too.
        with pytest.raises(DataDirLocked) as refused:
            DataDirLock.acquire(tmp_path)
        assert refused.value.pid == os.getpid()
        assert f"pid {os.getpid()}" in str(refused.value) and "NIJA_DATA_DIR" in str(refused.value)
        assert holder_pid(tmp_path) == os.getpid()  # the refused one wrote nothing
    finally:
        first.release()
    DataDirLock.acquire(tmp_path).release()  # free again


def test_a_killed_holder_frees_the_lock_and_leaves_its_pid_behind(tmp_path):
    holder = (
        "import os, sys\n"
        "from bot.daemon.lock import DataDirLock\n"
        "DataDirLock.acquire(sys.argv[1])\n"
        "os._exit(0)  # no release: as a SIGKILL would end it\n"
    )
    done = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], timeout=30)
    assert done.returncode == 0
    dead_pid = holder_pid(tmp_path)
    assert dead_pid is not None and dead_pid != os.getpid()
    lock = DataDirLock.acquire(tmp_path)  # no stale lock: the kernel dropped it
    try:
        assert lock.previous_pid == dead_pid
    finally:
        lock.release()
    assert DataDirLock.acquire(tmp_path).previous_pid is None  # that release was clean


def test_an_unclean_release_keeps_the_pid(tmp_path):
    DataDirLock.acquire(tmp_path).release(clean=False)
    assert DataDirLock.acquire(tmp_path).previous_pid == os.getpid()


def test_an_unusable_data_directory_names_itself_and_the_fix(tmp_path, monkeypatch):
    a_file = tmp_path / "data"
    a_file.write_text("")
    with pytest.raises(StartupError, match="NIJA_DATA_DIR") as bad:
        DataDirLock.acquire(a_file)
    assert str(a_file) in str(bad.value)
    # A directory this user cannot write (root could, so os.access is asked here).
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(StartupError, match="not writable"):
        DataDirLock.acquire(tmp_path / "other")
