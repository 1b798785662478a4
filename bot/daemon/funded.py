"""Which accounts hold funds: every balance fetched at once, each answer used as it arrives.

The reference design checked balances one after another with no timeout, so one hung
account delayed every other account's start. Here each account's balance call runs
in its own worker, is bounded by the call timeout (the adapters' own HTTP timeouts,
plus a deadline here for anything that ignores them), and passes the isolation gate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from bot.brokers.base import Broker
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import describe
from bot.isolation.manager import AccountBlockedError, AccountIsolationManager, classify_failure
from bot.model import Balance, BrokerSpec

# Grace on top of the call timeout before a balance call is declared hung.
DEADLINE_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class FundedResult:
    """One account's answer: its balance, or why there is none."""

    account_key: str
    funded: bool
    balance_usd: float | None = None
    cash_usd: float | None = None
    error: str | None = None  # "Type: message", secrets masked by the isolation's redactor
    failure_type: str | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # the venue's word to the operator (Balance.notes)


def _check(
    spec: BrokerSpec,
    make_broker: Callable[[BrokerSpec], Broker],
    isolation: AccountIsolationManager,
    min_balance_usd: float,
    clock: Clock,
) -> FundedResult:
    acct = spec.account
    started = clock.monotonic()
    isolation.register_account(acct.account_type, acct.account_id, acct.broker)
    broker = None
    try:
        with isolation.guard(acct.account_type, acct.account_id, acct.broker, "balance"):
            # Built inside the guard: an unusable secret is this account's recorded failure.
            broker = make_broker(spec)
            balance: Balance = broker.fetch_balance()
    except AccountBlockedError as blocked:
        return FundedResult(acct.key, False, error=f"blocked: {blocked.reason}")
    except Exception as exc:  # recorded by the guard; reported here for the operator
        return FundedResult(
            acct.key,
            False,
            error=describe(exc, redactor=isolation.redactor),
            failure_type=classify_failure(exc, "balance").value,
            seconds=clock.monotonic() - started,
        )
    finally:
        if broker is not None:
            broker.close()  # the account's trading thread builds its own client
    funded = balance.usd_equity >= min_balance_usd
    return FundedResult(
        acct.key,
        funded,
        balance_usd=balance.usd_equity,
        cash_usd=balance.usd_cash,
        seconds=clock.monotonic() - started,
        notes=balance.notes,
        # An unfunded account's status shows why (e.g. its funds sit in OKX's funding account).
        error=None if funded or not balance.notes else "; ".join(balance.notes),
    )


def check_funded(
    specs: Iterable[BrokerSpec],
    make_broker: Callable[[BrokerSpec], Broker],
    isolation: AccountIsolationManager,
    *,
    min_balance_usd: float,
    timeout_seconds: float,
    max_workers: int = 32,
    stop: threading.Event | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[FundedResult]:
    """Yield each account's FundedResult as soon as it is known.

    Each account's client is built by ``make_broker`` in its own worker and closed
    after its answer. Every account gets an answer by ``timeout_seconds +
    DEADLINE_GRACE_SECONDS`` on ``clock.monotonic()``: one still running then is reported
    as hung (its worker is left to finish on its own; the guard records its outcome
    whenever it comes).
    """
    specs = list(specs)
    if not specs:
        return
    deadline = clock.monotonic() + timeout_seconds + DEADLINE_GRACE_SECONDS
    pool = ThreadPoolExecutor(
        max_workers=min(max_workers, len(specs)), thread_name_prefix="funded-check"
    )
    futures: dict[Future[FundedResult], BrokerSpec] = {
        pool.submit(_check, s, make_broker, isolation, min_balance_usd, clock): s for s in specs
    }
    pending = set(futures)
    try:
        while pending and not (stop and stop.is_set()):
            left = deadline - clock.monotonic()
            if left <= 0:
                break
            done, pending = wait(pending, timeout=min(left, 0.5), return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()  # _check returns, never raises
        for fut in pending:
            yield FundedResult(
                futures[fut].account.key,
                False,
                error=f"TimeoutError: no balance answer within {timeout_seconds:.0f}s",
                failure_type="network_error",
                seconds=timeout_seconds + DEADLINE_GRACE_SECONDS,
            )
    finally:
        # Never wait here for a hung call: its worker finishes on its own.
        pool.shutdown(wait=False, cancel_futures=True)
