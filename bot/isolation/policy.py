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
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from bot.isolation.failures import FailureType, classify

if TYPE_CHECKING:
    from bot.isolation.circuit import CircuitBreakerConfig


class Weight(Enum):
    """What one failure does to its account's circuit."""

    OPENS = "opens"
    COUNTED = "counted"
    REFUSAL = "refusal"


def weigh(config: CircuitBreakerConfig, failure_type: FailureType, error: BaseException) -> Weight:
    """The weight of ``error``, recorded as ``failure_type``, under ``config``'s policy."""
    if failure_type in config.open_immediately_on:
        return Weight.OPENS
    # classify without the operation: is the refusal the error's own, or only the call's?
    if failure_type in config.refusals and classify(error) is failure_type:
        return Weight.REFUSAL
    return Weight.COUNTED
