"""The ``requests`` transport every adapter mounts: the last Python step before a request's bytes.

All the SDKs NIJA uses (alpaca-py, coinbase-advanced-py, ccxt) send through a
``requests.Session``; the ``HTTPAdapter`` mounted on it sees every request once it is built
and signed, just before urllib3 writes it to the socket. ``Transport`` is that adapter:

* no retries: a POST that timed out must be looked up, never sent again by the transport;
* a default timeout, for an SDK that sends some requests without one (alpaca-py);
* ``before_send`` (an account's request budget, spent before the timeout starts);
* then the order's **last look** (``LastLook``): with leases, the check that this node still
  holds the account's lease. A check made earlier (before the budget's wait, before the SDK
  builds and signs the request, before the GIL comes back to this thread) can be true when
  it is made and false when the request leaves; here only urllib3's socket write follows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter


class LastLook:
    """One broker client's last look before an order's request leaves.

    ``armed(check)`` arms it for the order's SDK call; the transport runs ``check`` once, for
    the first request that call sends from the arming thread (the order itself; not a lookup
    after it, nor another thread's request on the same client), and a raise withdraws the
    request before any byte of it is written.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._check: Callable[[], None] | None = None
        self._thread: int | None = None

    @contextmanager
    def armed(self, check: Callable[[], None] | None) -> Iterator[None]:
        """Run the block with ``check`` armed (nothing armed when it is None)."""
        with self._lock:
            self._check, self._thread = check, threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                self._check = self._thread = None

    def __call__(self) -> None:
        """Run the armed check, once, if this thread armed it; raises what it raises."""
        with self._lock:
            if self._check is None or self._thread != threading.get_ident():
                return
            check, self._check = self._check, None
        check()


class Transport(HTTPAdapter):
    """A ``requests`` adapter with no retries, an optional default timeout, the request budget
    (``before_send``) and then the order's last look, in that order, before every send."""

    def __init__(
        self,
        *,
        timeout: float | None = None,
        before_send: Callable[[], object] | None = None,
        last_look: LastLook | None = None,
    ) -> None:
        super().__init__(max_retries=0)
        self._timeout = timeout
        self._before_send = before_send
        self._last_look = last_look

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """Spend the budget, take the last look, then send (with the default timeout if none)."""
        if self._before_send is not None:
            self._before_send()
        if self._last_look is not None:
            self._last_look()
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def mount(session: Any, transport: Transport) -> None:
    """Mount ``transport`` on ``session`` for both schemes."""
    session.mount("http://", transport)
    session.mount("https://", transport)


__all__ = ["LastLook", "Transport", "mount"]
