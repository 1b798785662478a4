"""The failure policy: which failures count toward quarantine. The one place that decides.

pybreaker's ``exclude`` / ``is_system_error`` idea: a business refusal does not trip
the breaker. Every recorded failure is weighed here, once, into one of three weights:

* ``OPENS``: a type in ``config.open_immediately_on`` (bad credentials): retrying will
  not fix it, so the circuit opens at once (FAILING).
* ``REFUSAL``: a type in ``config.refusals`` (insufficient funds, an order the venue
  rejected) *proven by the error's own type*: the venue answered and said no to one
  request, which shows a working account. Recorded and visible (totals, breakdown,
  last error), never counted toward ``failure_threshold``. The same type lent by the
  operation alone (an unknown exception during ``balance``) proves nothing and counts.
* ``COUNTED``: everything else; one more failure toward quarantine. A store failure
  (``STORE_ERROR``, e.g. a full disk) counts too: an order that cannot be stored first
  is never sent, so the account cannot trade until it clears.
* ``OUTAGE``: counted like ``COUNTED``, but of the kind a venue outage explains
  (``is_outage``: no answer, a timeout, a 5xx, a maintenance answer). When the venue layer
  declares the account's venue down, these are forgiven (``AccountHandle.forgive_outage``):
  the outage was the venue's, not the account's.
* ``EXCUSED``: an outage-kind failure the venue layer tagged (``OUTAGE_TAG``) because its
  venue was already declared down when it happened: recorded and visible, never counted.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from bot import errors
from bot.isolation.failures import FailureType, classify

if TYPE_CHECKING:
    from bot.isolation.circuit import CircuitBreakerConfig


# Set (True) on an exception by the venue layer when its venue was already down: that
# failure is the venue's outage, never the account's (Weight.EXCUSED).
OUTAGE_TAG = "_nija_venue_outage"


class Weight(Enum):
    """What one failure does to its account's circuit."""

    OPENS = "opens"
    COUNTED = "counted"
    OUTAGE = "outage"  # counted; forgiven if its venue is declared down
    EXCUSED = "excused"  # its venue was down: recorded, never counted
    REFUSAL = "refusal"


def is_outage(error: BaseException) -> bool:
    """True when a venue outage explains ``error``, by its type and HTTP status alone.

    No usable answer (a timeout, a refused or dropped connection, a 5xx the adapter read as
    such, a maintenance answer: ``NETWORK_ERROR``), or a venue error of no finer kind that
    came with a 5xx status (Binance's ``-1001`` body in a 503). Never a rate limit, an
    authentication, permission or funds failure: those are the account's own.
    """
    kind = classify(error)
    if kind is FailureType.NETWORK_ERROR:
        return True
    status = error.status if isinstance(error, errors.BrokerError) else None
    return kind is FailureType.API_ERROR and status is not None and 500 <= status <= 599


def excuse(error: BaseException) -> None:
    """Tag ``error`` as its venue's outage: recorded, never counted (``Weight.EXCUSED``).

    The venue layer calls it when the account's venue was already declared down.
    Some builtin exceptions refuse attributes: those stay counted (and forgivable).
    """
    try:
        setattr(error, OUTAGE_TAG, True)
    except (AttributeError, TypeError):
        return


def weigh(config: CircuitBreakerConfig, failure_type: FailureType, error: BaseException) -> Weight:
    """The weight of ``error``, recorded as ``failure_type``, under ``config``'s policy."""
    if failure_type in config.open_immediately_on:
        return Weight.OPENS
    # classify without the operation: is the refusal the error's own, or only the call's?
    if failure_type in config.refusals and classify(error) is failure_type:
        return Weight.REFUSAL
    if is_outage(error):
        return Weight.EXCUSED if getattr(error, OUTAGE_TAG, False) else Weight.OUTAGE
    return Weight.COUNTED
