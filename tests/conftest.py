"""Shared fixtures and markers for the whole suite.

Tests that start the real daemon (bot.py or start.sh in a subprocess) are marked ``system``:
they live under ``tests/system/``, which gets the marker here; the odd one that needs its
module's helpers stays there with ``@pytest.mark.system``. ``./scripts/test.sh -m "not system"``
is the fast loop.

The loopback emulators are shared by the whole run (``venue_pool``), one server per venue;
each test takes its venue fresh through ``venue_server`` (an empty venue, for tests that
add their own accounts) or ``venue_handle`` (the registry's one funded account and its
adapters, nija_testkit/emulator/venues.py).

The state store's tests run on both backends through ``database`` (SQLite, then PostgreSQL):
one throwaway PostgreSQL server per session (``postgres_server``, nija_testkit/postgres.py),
a fresh schema per test (``postgres_url``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when first used: the emulators pull in every broker SDK
    from selenium.webdriver.chrome.webdriver import WebDriver

    from bot.store.backend import Database
    from nija_testkit.emulator.core import Market
    from nija_testkit.emulator.server import EmulatorServer
    from nija_testkit.emulator.venues import VenueHandle, VenuePool
    from nija_testkit.postgres import PostgresServer

SYSTEM_DIR = Path(__file__).parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)
    _spread_long_tests(items)


def _seconds(marker: pytest.Mark | None) -> float:
    """``@pytest.mark.long(150)``: about how many seconds the test waits."""
    return float(marker.args[0]) if marker is not None and marker.args else 0.0


def _spread_long_tests(items: list[pytest.Item]) -> None:
    """Put the ``long`` tests (minutes of waiting on real candle closes, little CPU) at the
    starts of the xdist workers' shares, so the long waits overlap the CPU-bound rest instead
    of ending the run. xdist's work stealing hands each worker a contiguous slice of this
    order (every worker collects the same order: it depends on the worker count only). The
    tests of a module marked long as a whole stay together: a module-scoped fixture then runs
    once."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("long"):
            groups.setdefault(_long_group(item), []).append(item)
    if workers < 2 or not groups:
        return
    share = len(items) / workers
    cursor = [round(w * share) for w in range(workers)]  # the next free place of each share
    waits = [0.0] * workers
    places: dict[int, pytest.Item] = {}
    # The longest first, each to the worker with the least waiting so far.
    for group in sorted(groups.values(), key=lambda g: -max(map(_long_seconds, g))):
        w = waits.index(min(waits))
        for item in group:
            places[min(len(items) - 1, cursor[w])] = item
            cursor[w] += 1
        waits[w] += max(map(_long_seconds, group))
    rest = iter(item for item in items if not item.get_closest_marker("long"))
    items[:] = [places[i] if i in places else next(rest) for i in range(len(items))]


def _long_group(item: pytest.Item) -> str:
    """A module marked long as a whole (``pytestmark``) is one group; else each test is."""
    marks = getattr(getattr(item, "module", None), "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    whole = any(mark.name == "long" for mark in marks)
    return str(item.fspath) if whole else item.nodeid


def _long_seconds(item: pytest.Item) -> float:
    return _seconds(item.get_closest_marker("long"))


@pytest.fixture(scope="session")
def venue_pool() -> Iterator[VenuePool]:
    """The run's emulators, one per venue, started on first use."""
    from nija_testkit.emulator.venues import VenuePool

    pool = VenuePool()
    yield pool
    pool.stop()


@pytest.fixture
def venue_server(venue_pool: VenuePool) -> Iterator[Callable[..., EmulatorServer]]:
    """``venue_server("KRAKEN", market=None)``: that venue's emulator with a new venue on
    ``market``, no account, no faults, no records; its faults are cleared after the test."""
    taken: list[EmulatorServer] = []

    def take(broker: str, market: Market | None = None) -> EmulatorServer:
        taken.append(venue_pool.server(broker, market))
        return taken[-1]

    yield take
    for server in taken:
        server.clear_faults()


@pytest.fixture
def venue_handle(venue_pool: VenuePool) -> Iterator[Callable[[str], VenueHandle]]:
    """``venue_handle("KRAKEN")``: that venue's emulator reset to the registry's funded
    account; after the test its faults are cleared and the adapters it built are closed."""
    taken: list[VenueHandle] = []

    def take(broker: str) -> VenueHandle:
        taken.append(venue_pool.handle(broker))
        return taken[-1]

    yield take
    for handle in taken:
        handle.server.clear_faults()
        handle.close_brokers()


# -- the state store on each backend -------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL per test session (per xdist worker), started on first use.

    Without the server's binaries the PostgreSQL tests skip, naming the Debian package;
    under CI=true they fail instead: CI must run them (``.ci/run`` installs the package).
    """
    from nija_testkit.postgres import PostgresServer, find_bin_dir, missing_reason

    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing_reason()}; CI=true: the PostgreSQL tests must run")
        pytest.skip(missing_reason())
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A URL (with the password) to a fresh, empty schema of this test's own, dropped after."""
    name, url = postgres_server.new_schema()
    yield url
    postgres_server.drop_schema(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The paper state store on each backend in turn: a new SQLite file in ``tmp_path``, or
    a fresh schema on the session's PostgreSQL (quick retries: tests wait on nothing)."""
    from bot.store.pg import PostgresDatabase, Retry
    from bot.store.sqlite import SqliteDatabase

    if request.param == "sqlite":
        yield SqliteDatabase(tmp_path / "nija-paper.db")
        return
    url = request.getfixturevalue("postgres_url")
    db = PostgresDatabase(
        url, "paper", retry=Retry(attempts=3, first_delay=0.01), connect_timeout_seconds=2.0
    )
    yield db
    db.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[WebDriver]:
    """A real headless Chromium (Debian's, through selenium) with a fresh profile; the test
    is skipped when it is not installed, and fails under CI (nija_testkit/browser.py)."""
    from nija_testkit.browser import require_browser, start_chromium

    require_browser()
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
