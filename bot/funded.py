"""Which accounts hold funds: every balance fetched at once, each answer used as it arrives.

The reference design checked balances one after another with no timeout, so one hung
account delayed every other account's start. Here each account's balance call runs
in its own worker, is bounded by the call timeout (the adapters' own HTTP timeouts,
plus a deadline here for anything that ignores them), and passes the isolation gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from bot.account_isolation_manager import AccountBlockedError, AccountIsolationManager
from bot.brokers.base import Balance, Broker
from bot.failures import classify

# Grace on top of the call timeout before a balance call is declared hung.
DEADLINE_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class FundedResult:
    """One account's answer: its balance, or why there is none."""

    account_key: str
    funded: bool
    balance_usd: float | None = None
    cash_usd: float | None = None
    error: str | None = None  # "Type: message" (never a secret: adapters guarantee that)
    failure_type: str | None = None
    seconds: float = 0.0


def _check(
    broker: Broker, isolation: AccountIsolationManager, min_balance_usd: float
) -> FundedResult:
    acct = broker.account
    started = time.perf_counter()
    isolation.register_account(acct.account_type, acct.account_id, acct.broker)
    try:
        with isolation.guard(acct.account_type, acct.account_id, acct.broker, "balance"):
            balance: Balance = broker.fetch_balance()
    except AccountBlockedError as blocked:
        return FundedResult(acct.key, False, error=f"blocked: {blocked.reason}")
    except Exception as exc:  # recorded by the guard; reported here for the operator
        return FundedResult(
            acct.key,
            False,
            error=f"{type(exc).__name__}: {exc}"[:300],
            failure_type=classify(exc, "balance").value,
            seconds=time.perf_counter() - started,
        )
    return FundedResult(
        acct.key,
        balance.usd_equity >= min_balance_usd,
        balance_usd=balance.usd_equity,
        cash_usd=balance.usd_cash,
        seconds=time.perf_counter() - started,
    )


def check_funded(
    brokers: Iterable[Broker],
    isolation: AccountIsolationManager,
    *,
    min_balance_usd: float,
    timeout_seconds: float,
    max_workers: int = 32,
    stop: threading.Event | None = None,
) -> Iterator[FundedResult]:
    """Yield each account's FundedResult as soon as it is known.

    Every account gets an answer by ``timeout_seconds + DEADLINE_GRACE_SECONDS``: one
    still running then is reported as hung (its worker is left to finish on its own;
    the guard records its outcome whenever it comes).
    """
    brokers = list(brokers)
    if not brokers:
        return
    deadline = time.monotonic() + timeout_seconds + DEADLINE_GRACE_SECONDS
    pool = ThreadPoolExecutor(
        max_workers=min(max_workers, len(brokers)), thread_name_prefix="funded-check"
    )
    futures: dict[Future[FundedResult], Broker] = {
        pool.submit(_check, b, isolation, min_balance_usd): b for b in brokers
    }
    pending = set(futures)
    try:
        while pending and not (stop and stop.is_set()):
            left = deadline - time.monotonic()
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
