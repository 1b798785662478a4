"""The check scripts' fixtures: a Kraken emulator with one funded account, a data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from nija_testkit.emulator.server import EmulatorServer
from tests.cli.scripts import KEY, SECRET


@pytest.fixture
def kraken(venue_server) -> EmulatorServer:
    """The run's Kraken emulator, fresh (tests/conftest.py): one account holding $10,000."""
    server = venue_server("KRAKEN")
    server.venue.add_account(KEY, SECRET, {"USD": 10000.0})
    return server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
