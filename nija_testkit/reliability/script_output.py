"""What every reliability script prints at its end: the machine, the violations, the report.

The scripts (``scripts/crash_restart.py``, ``scripts/cluster_chaos.py``) each summarise their
own report; how a summary is stamped and printed is the same for all of them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime


def stamp() -> dict:
    """When and where a run was made: the summary's ``when`` and ``machine`` keys."""
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load": [round(x, 2) for x in os.getloadavg()],
        },
    }


def verdict(summary: dict, width: int) -> str:
    """The table's last line: OK, or BROKEN with the run's error if it had one."""
    said = "OK" if summary["ok"] else "BROKEN"
    if summary["error"]:
        said += f" ({summary['error']})"
    return f"{'result':<{width}}{said}"


def print_summary(summary: dict, table: Callable[[dict], str], *, as_json: bool) -> None:
    """Each example of a violation on stderr, then the summary (JSON or ``table``) on stdout."""
    for kind, items in summary["violation_examples"].items():
        for item in items:
            print(f"{kind}: {item}", file=sys.stderr)
    print(json.dumps(summary, indent=2) if as_json else table(summary))


__all__ = ["print_summary", "stamp", "verdict"]
