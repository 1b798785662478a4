"""A systemd unit file read as its ``Key=value`` lines (shared by the deploy files' tests
and the start script's)."""

from __future__ import annotations

from pathlib import Path


def unit_entries(path: Path) -> dict[str, list[str]]:
    """``Key`` → the values of every ``Key=value`` line of a unit file, in order."""
    entries: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        assert not line.endswith("\\"), f"{path.name}: continuation lines are not read here"
        key, _, value = line.partition("=")
        entries.setdefault(key.strip(), []).append(value.strip())
    return entries
