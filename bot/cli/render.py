"""Text for the check commands: aligned tables and small formats, from the rows.

Pure functions over the rows ``bot.cli.rows`` makes (plain dicts, which the commands print
as JSON), so the table and the JSON always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.cli.rows import FUNDS_UNKNOWN

# Longest cell before it is cut (an error message can be long; the JSON keeps it whole).
# The commands mask secrets in a report before rendering it, so a cut never comes first.
MAX_CELL = 60


def cell(value: Any) -> str:
    """One table cell: ``-`` for nothing, yes/no for booleans, long text shortened."""
    if value is None or value == "":
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = " ".join(str(value).split())  # no newlines inside a row
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, a rule under the headers, two spaces apart."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def usd(value: float | None) -> str | None:
    """``$1,234.50``, or None when unknown."""
    return None if value is None else f"${value:,.2f}"


def age(seconds: float | None) -> str | None:
    """A duration a person reads at a glance: ``4 s``, ``3 min``, ``2.5 h``, ``3.0 d``."""
    if seconds is None:
        return None
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _ago(seconds: float | None) -> str | None:
    return None if seconds is None else f"{age(seconds)} ago"


def mode_line(mode: str, demo: bool) -> str:
    """``Mode: PAPER``, ``Mode: LIVE`` or ``Mode: PAPER (DEMO)``; LIVE is said to be real money."""
    text = f"Mode: {mode.upper()}"
    if demo:
        text += " (DEMO: simulated accounts)"
    elif mode == "live":
        text += " (real orders)"
    return text


def footer(report: Mapping[str, Any]) -> str:
    """The closing lines: what needs attention (incomplete credentials first), or all well."""
    reasons = [
        f"{err['account']}: credentials incomplete: {err['message']}"
        for err in report.get("config_errors", [])
    ]
    reasons += report.get("attention", [])
    if not reasons:
        return "All well."
    return "\n".join(["Needs attention:", *(f"  - {reason}" for reason in reasons)])


def render_broker_status(report: Mapping[str, Any]) -> str:
    """The check_broker_status table."""
    rows = [
        (
            a["account"],
            a["credentials"],
            a["connection"],
            usd(a["venue_balance_usd"]),
            a["funded"],
            f"{a['seconds']:.1f} s" if a["seconds"] is not None else None,
            a["error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report.get("demo", False))]
    head.append(
        f"Funded threshold {usd(report['min_balance_usd'])} (of the venue balance), call timeout "
        f"{report['timeout_seconds']:g} s"
    )
    if report.get("paper_balance_usd") is not None:
        wallet = usd(report["paper_balance_usd"])
        head.append(
            f"Paper mode: each account trades a paper wallet of {wallet};"
            " VENUE BALANCE is what the account holds at the venue."
        )
    parts = ["\n".join(head)]
    if rows:
        headers = (
            "ACCOUNT",
            "CREDENTIALS",
            "CONNECTION",
            "VENUE BALANCE",
            "FUNDED",
            "TIME",
            "ERROR",
        )
        parts.append(table(headers, rows))
    if report.get("note"):
        parts.append(report["note"])
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_independent_status(report: Mapping[str, Any], sections: Sequence[str] = ()) -> str:
    """The check_independent_broker_status table (a PAPER EQUITY column in paper mode), then
    ``sections`` (the cluster's leases and nodes), before the verdict."""
    paper = report["mode"] == "paper"
    rows = [
        (
            a["account"],
            FUNDS_UNKNOWN.get(a["funds_check"], a["funded"]),
            usd(a["venue_balance_usd"]),
            *((usd(a["paper_equity_usd"]),) if paper else ()),
            a["ready"],
            a["thread"],
            a["health"],
            a["circuit"],
            a["cycles"],
            _ago(a["last_cycle_age_seconds"]),
            a.get("venue_state"),
            a["last_error"],
        )
        for a in report["accounts"]
    ]
    head = [mode_line(report["mode"], report["demo"])]
    if paper:
        head.append(paper_note())
    head.append(report["daemon"]["summary"])
    parts = ["\n".join(head)]
    if rows:
        headers = (
            "ACCOUNT",
            "FUNDED",
            "VENUE BALANCE",
            *(("PAPER EQUITY",) if paper else ()),
            "READY",
            "THREAD",
            "HEALTH",
            "CIRCUIT",
            "CYCLES",
            "LAST CYCLE",
            "VENUE",
            "LAST ERROR",
        )
        parts.append(table(headers, rows))
    if report.get("venues"):
        parts.append(render_venues(report["venues"]))
    parts += sections
    parts.append(f"isolation_guarantee: {report['isolation_guarantee']}")
    parts.append(footer(report))
    return "\n\n".join(parts) + "\n"


def render_venues(venues: Sequence[Mapping[str, Any]]) -> str:
    """The venues table: each venue's state, since when and why, its last probe, its public
    request rate."""
    rows = []
    for v in venues:
        probe = v["last_probe"]
        probed = None
        if probe is not None:
            probed = f"{'ok' if probe['ok'] else 'failed'} {_ago(probe['age_seconds'])}"
        rows.append(
            (
                v["venue"],
                v["state"],
                _ago(v["since_age_seconds"]),
                v["reason"],
                probed,
                v["public_requests_per_min"],
            )
        )
    headers = ("VENUE", "STATE", "SINCE", "REASON", "LAST PROBE", "PUBLIC REQ/MIN")
    return table(headers, rows)


def paper_note() -> str:
    """What paper mode's two amounts are: the venue balance is real, the paper equity simulated."""
    return (
        "Paper mode: paper equity is the simulated wallet's worth, venue balance what the"
        " account holds at the venue."
    )


def indent(text: str, prefix: str = "    ") -> str:
    """Every line of ``text`` indented by ``prefix``."""
    return "\n".join(prefix + line for line in text.splitlines())
