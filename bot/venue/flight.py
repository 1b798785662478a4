"""Single flight: concurrent calls for the same key make one call; the others wait for it.

The first caller of a key (the leader) runs the function; callers arriving while it runs
wait for its outcome, at most ``timeout`` seconds, and get the same value or the same
exception. Once the leader is done the key is free again: the next caller runs anew
(what is cached between flights is the caller's business).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class FlightTimeout(TimeoutError):
    """A waiter gave up: the leader's call had not finished within the waiter's timeout."""


class _Call(Generic[V]):
    __slots__ = ("done", "error", "value", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None
        self.waiters = 0


class SingleFlight(Generic[V]):
    """One call in flight per key; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[V]] = {}

    def do(self, key: Hashable, fn: Callable[[], V], timeout: float) -> V:
        """``fn()``'s value, from this call or from the one already in flight for ``key``.

        A waiter raises ``FlightTimeout`` after ``timeout`` seconds without an outcome; the
        leader itself is bounded only by ``fn``.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                call.waiters += 1
        if not leader:
            if not call.done.wait(timeout):
                raise FlightTimeout(f"no answer within {timeout:g}s")
            if call.error is not None:
                raise call.error
            return call.value  # type: ignore[return-value]  # set by the leader before done
        try:
            call.value = fn()
            return call.value
        except BaseException as exc:  # handed to the waiters, then raised here too
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()

    def in_flight(self) -> int:
        """How many keys have a call running now."""
        with self._lock:
            return len(self._calls)

    def waiting(self) -> int:
        """How many callers are waiting for a call in flight (they made no call themselves)."""
        with self._lock:
            return sum(call.waiters for call in self._calls.values())
