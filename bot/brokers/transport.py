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
  it is made and false when the request leaves. So it is made here, and again by the
  connection just before each write of the order's request to the socket (its headers, its
  body): between that look and ``sock.sendall`` there is one call. A refusal withdraws the
  request before any byte of it (or of its rest) is written, and the connection is dropped.
  (Through a SOCKS proxy only the first look applies: its connections are urllib3's own.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class LastLook:
    """One broker client's last look before an order's request leaves.

    ``armed(check)`` arms it for the order's SDK call, in the arming thread only (its own
    slot: another thread's request on the same client is never looked at, nor disarms it).
    The transport runs ``check`` before each request of that call and again just before each
    write of it to the socket; a raise withdraws the request before (the rest of) it is
    written. Once a request that carries a body (the order: a POST on every venue) has been
    written, ``done()`` disarms it: a read-back after the order is not looked at, while a
    look-up the SDK may make before the order still is.
    """

    def __init__(self) -> None:
        self._slot = threading.local()

    @contextmanager
    def armed(self, check: Callable[[], None] | None) -> Iterator[None]:
        """Run the block with ``check`` armed in this thread (nothing armed when None)."""
        self._slot.check = check
        try:
            yield
        finally:
            self._slot.check = None

    def __call__(self) -> None:
        """Run the check this thread armed, if any; raises what it raises."""
        check = getattr(self._slot, "check", None)
        if check is not None:
            check()

    def done(self) -> None:
        """This thread's order has been written (or withdrawn): look no more in this call."""
        self._slot.check = None


def _looking(last_look: LastLook) -> dict[str, type]:
    """Pool classes whose connections take ``last_look`` just before each socket write.

    Made per transport: urllib3 hands a pool's connection class no per-instance argument it
    would not also put into the pool's key. ``http.client``'s ``send`` is the last Python
    step before ``sock.sendall``; between the look and the write there is one call.
    """

    def connection(base: type[HTTPConnection]) -> type:
        def send(self: HTTPConnection, data: Any) -> None:
            last_look()
            base.send(self, data)

        return type(f"Looking{base.__name__}", (base,), {"send": send})

    return {
        "http": type(
            "LookingPool", (HTTPConnectionPool,), {"ConnectionCls": connection(HTTPConnection)}
        ),
        "https": type(
            "LookingHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": connection(HTTPSConnection)},
        ),
    }


# urllib3's own pool classes, which a SOCKS proxy manager replaces with its own.
_PLAIN = {"http": HTTPConnectionPool, "https": HTTPSConnectionPool}


class Transport(HTTPAdapter):
    """A ``requests`` adapter with no retries, an optional default timeout, the request budget
    (``before_send``) and then the order's last look, in that order, before every send; the
    last look again at each socket write of the order's request."""

    def __init__(
        self,
        *,
        timeout: float | None = None,
        before_send: Callable[[], object] | None = None,
        last_look: LastLook | None = None,
    ) -> None:
        self._timeout = timeout
        self._before_send = before_send
        self._last_look = last_look  # before super().__init__: it builds the pool manager
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """requests' pool manager, with connections that look before they write."""
        super().init_poolmanager(*args, **kwargs)
        last_look = getattr(self, "_last_look", None)  # None while unpickling
        if last_look is not None:
            self.poolmanager.pool_classes_by_scheme = _looking(last_look)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """requests' manager for an HTTP(S) proxy, with connections that look before they
        write too. A SOCKS proxy keeps its own connection classes: there only the
        transport's look applies."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if self._last_look is not None and manager.pool_classes_by_scheme == _PLAIN:
            manager.pool_classes_by_scheme = _looking(self._last_look)
        return manager

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """Spend the budget, take the last look, then send (with the default timeout if none)."""
        if self._before_send is not None:
            self._before_send()
        look = self._last_look
        if look is not None:
            look()
        try:
            return super().send(
                request,
                stream=stream,
                timeout=self._timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        finally:
            if look is not None and request.body is not None:
                look.done()  # the order went (or was withdrawn); a GET before it is no order


def mount(session: Any, transport: Transport) -> None:
    """Mount ``transport`` on ``session`` for both schemes."""
    session.mount("http://", transport)
    session.mount("https://", transport)


__all__ = ["LastLook", "Transport", "mount"]
