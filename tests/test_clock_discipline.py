"""Only ``bot/clock.py`` reads the time: every other module is given a ``bot.clock.Clock``.

The check parses each module under ``bot/`` (and ``bot.py``) and reports every use of a
function that reads a clock, however it was imported: ``time.time``, ``from time import
monotonic``, ``datetime.now``, ``datetime.datetime.utcnow``, ``date.today`` and the like.
A use is reported even without a call (``clock=time.time`` reads the time later).
Waiting (``time.sleep``, ``Event.wait``) and converting (``datetime.fromtimestamp``) are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLOCK_MODULE = "bot/clock.py"

TIME_READS = frozenset(
    {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}
)
# The datetime module's classes and their methods that read the clock.
CLASS_READS = {"datetime": frozenset({"now", "utcnow", "today"}), "date": frozenset({"today"})}


def time_reads(source: str) -> list[str]:
    """``line: what`` for every use of a time-reading function in ``source``."""
    tree = ast.parse(source)
    reads_on: dict[str, frozenset[str]] = {}  # a bound name -> its attributes that read time
    datetime_mods: set[str] = set()  # import datetime [as dt]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name
                if alias.name == "time":
                    reads_on[bound] = TIME_READS
                elif alias.name == "datetime":
                    datetime_mods.add(bound)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if node.module == "time" and alias.name in TIME_READS:
                    found.append((node.lineno, f"from time import {alias.name}"))
                elif node.module == "datetime" and alias.name in CLASS_READS:
                    reads_on[alias.asname or alias.name] = CLASS_READS[alias.name]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and node.attr in reads_on.get(owner.id, ()):
            found.append((node.lineno, f"{owner.id}.{node.attr}"))
        elif (
            isinstance(owner, ast.Attribute)
            and isinstance(owner.value, ast.Name)
            and owner.value.id in datetime_mods
            and node.attr in CLASS_READS.get(owner.attr, ())
        ):
            found.append((node.lineno, f"{owner.value.id}.{owner.attr}.{node.attr}"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def checked_modules() -> list[Path]:
    return [*sorted((ROOT / "bot").rglob("*.py")), ROOT / "bot.py"]


def test_no_module_but_bot_clock_reads_the_time() -> None:
    offenders = {}
    for path in checked_modules():
        rel = path.relative_to(ROOT).as_posix()
        if rel == CLOCK_MODULE:
            continue
        if found := time_reads(path.read_text(encoding="utf-8")):
            offenders[rel] = found
    assert offenders == {}, "read the time through the Clock you are given: " + repr(offenders)


def test_the_check_covers_the_whole_package() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in checked_modules()}
    assert {CLOCK_MODULE, "bot.py", "bot/daemon/supervisor.py", "bot/store/writer.py"} <= names
    assert time_reads((ROOT / CLOCK_MODULE).read_text(encoding="utf-8"))  # it sees the real reads


@pytest.mark.parametrize(
    "source",
    [
        "import time\nt = time.time()",
        "import time\nt = time.monotonic()",
        "import time\nt = time.perf_counter()",
        "import time\nt = time.time_ns()",
        "import time\nt = time.monotonic_ns()",
        "import time as t\nx = t.monotonic()",
        "import time\ndef f(clock=time.time):\n    return clock()",
        "from time import time\nt = time()",
        "from time import monotonic as mono\nt = mono()",
        "from datetime import datetime\nt = datetime.now()",
        "from datetime import UTC, datetime\nt = datetime.now(UTC)",
        "from datetime import datetime\nt = datetime.utcnow()",
        "from datetime import datetime as dt\nt = dt.now()",
        "from datetime import date\nd = date.today()",
        "import datetime\nt = datetime.datetime.now()",
        "import datetime as dt\nd = dt.date.today()",
        "def f():\n    import time\n    return time.time()",
    ],
)
def test_the_check_finds_each_way_of_reading_the_time(source: str) -> None:
    assert len(time_reads(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "import time\ntime.sleep(1)",
        "import threading\nthreading.Event().wait(1)",
        "from datetime import UTC, datetime\nd = datetime.fromtimestamp(0, UTC)",
        "from datetime import date\nd = date.fromisoformat('2026-01-01')",
        "def f(clock):\n    return clock.wall(), clock.monotonic(), clock.utc_now()",
        "from bot.clock import SYSTEM_CLOCK\nt = SYSTEM_CLOCK.wall()",
    ],
)
def test_the_check_leaves_waiting_and_converting_alone(source: str) -> None:
    assert time_reads(source) == []
