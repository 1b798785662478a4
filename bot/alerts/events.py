"""What an alert is: its kind, its severity, what it is about, and its one line of text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DAEMON", "AlertEvent", "AlertKind", "Severity"]

# The subject of the alerts about the daemon as a whole (start, stop, suppressed alerts).
DAEMON = "daemon"


class Severity(StrEnum):
    """How urgent an alert is; the value is what the text and the webhook's JSON show."""

    INFO = "info"  # for the record: nothing to do
    WARNING = "warning"  # trading is limited, NIJA copes; have a look
    CRITICAL = "critical"  # a person must act (a key, an order to check at the venue)


class AlertKind(StrEnum):
    """Every alert NIJA sends; the value is the webhook's ``kind`` (a contract)."""

    STARTED = "started"
    STOPPED = "stopped"
    START_FAILED = "start_failed"
    ACCOUNT_FAILING = "account_failing"
    ACCOUNT_QUARANTINED = "account_quarantined"
    ACCOUNT_RECOVERED = "account_recovered"
    THREAD_DEAD = "thread_dead"
    THREAD_RESTARTED = "thread_restarted"
    VENUE_DOWN = "venue_down"
    VENUE_UP = "venue_up"
    DAILY_LOSS_HALT = "daily_loss_halt"
    ORDER_UNKNOWN = "order_unknown"
    EXIT_BLOCKED = "exit_blocked"
    RECONCILE_MISMATCH = "reconcile_mismatch"
    OPERATOR_PAUSE = "operator_pause"
    OPERATOR_RESUME = "operator_resume"
    OPERATOR_RESET = "operator_reset"
    OPERATOR_RELOAD = "operator_reload"
    ACCOUNT_TAKEN_OVER = "account_taken_over"  # a node took an account whose node went silent
    LEASE_LOST = "lease_lost"  # this node lost an account it traded
    NODE_SUPERSEDED = "node_superseded"  # another process took this node's name
    SUPPRESSED = "alerts_suppressed"  # the summary of what dedupe and the rate limit held back

    @property
    def severity(self) -> Severity:
        return _SEVERITY.get(self, Severity.INFO)


_SEVERITY = {
    AlertKind.STOPPED: Severity.WARNING,
    AlertKind.START_FAILED: Severity.CRITICAL,
    AlertKind.ACCOUNT_FAILING: Severity.CRITICAL,
    AlertKind.ACCOUNT_QUARANTINED: Severity.WARNING,
    AlertKind.THREAD_DEAD: Severity.CRITICAL,
    AlertKind.VENUE_DOWN: Severity.WARNING,
    AlertKind.DAILY_LOSS_HALT: Severity.WARNING,
    AlertKind.ORDER_UNKNOWN: Severity.CRITICAL,
    AlertKind.EXIT_BLOCKED: Severity.CRITICAL,
    AlertKind.RECONCILE_MISMATCH: Severity.WARNING,
    AlertKind.ACCOUNT_TAKEN_OVER: Severity.WARNING,
    AlertKind.LEASE_LOST: Severity.WARNING,
    AlertKind.NODE_SUPERSEDED: Severity.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert: ``subject`` is an account key, a venue name or ``DAEMON``; ``topic`` what
    within it (an order's client id, a symbol; "" for the subject itself); ``text`` is one
    line for a person (not yet redacted: the notifier redacts every text it sends)."""

    kind: AlertKind
    subject: str
    text: str
    at: float  # wall-clock epoch seconds
    topic: str = ""

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    @property
    def key(self) -> tuple[AlertKind, str, str]:
        """What makes two alerts repeats of each other (the dedupe key)."""
        return self.kind, self.subject, self.topic
