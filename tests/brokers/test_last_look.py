"""The order's last look, on all five adapters through the real SDKs over real HTTP: it runs in
the transport once per order (after the request budget's wait), and a refusal withdraws the
order before any byte of it reaches the venue, leaving as the refusal itself."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from bot.brokers.budget import Budgets, RequestBudget
from bot.brokers.transport import LastLook, Transport
from bot.store.fence import LeaseFence, LeaseLostError
from nija_testkit.clock import FakeClock
from nija_testkit.emulator.venues import BROKERS


class Refused(Exception):
    """What the test's last look raises."""


@pytest.mark.parametrize("name", BROKERS)
def test_a_refusing_last_look_withdraws_the_order_and_a_passing_one_looks_until_it_is_written(
    venue_handle, name
):
    handle = venue_handle(name)
    broker = handle.make_broker()
    broker.fetch_balance()  # the markets and the connection are warm: only the order is left

    def refuse() -> None:
        raise Refused("lease gone")

    request = dataclasses.replace(handle.order_request(), last_look=refuse)
    with pytest.raises(Refused):
        broker.place_order(request)
    assert handle.server.requests_to("create_order") == []
    assert broker.fetch_order(request.client_order_id, request.symbol) is None

    looks: list[int] = []
    request = dataclasses.replace(handle.order_request(), last_look=lambda: looks.append(1))
    order = broker.place_order(request)
    assert order.client_order_id == request.client_order_id
    assert len(handle.server.requests_to("create_order")) == 1
    # Once in the transport, then at each socket write of the order's request (its headers,
    # its body): never for the read-back some venues need after it.
    assert len(looks) == 3
    seen = len(looks)
    broker.fetch_balance()  # disarmed after the order: later requests are not looked at
    assert len(looks) == seen


@pytest.mark.parametrize("passes", [1, 2], ids=["before-the-headers", "before-the-body"])
@pytest.mark.parametrize("name", BROKERS)
def test_a_lease_lost_between_the_transport_and_the_socket_sends_no_order(
    venue_handle, name, passes
):
    """The first looks pass; the node freezes before urllib3 writes the request (or its body,
    the headers gone), and the look at that socket write refuses: the venue receives no
    order, and the client goes on with a fresh connection."""
    handle = venue_handle(name)
    broker = handle.make_broker()
    broker.fetch_balance()
    calls: list[int] = []

    def lapses() -> None:
        calls.append(1)
        if len(calls) > passes:
            raise Refused("lease lapsed while frozen")

    request = dataclasses.replace(handle.order_request(), last_look=lapses)
    with pytest.raises(Refused):
        broker.place_order(request)
    assert len(calls) == passes + 1
    assert handle.server.requests_to("create_order") == []
    assert broker.fetch_order(request.client_order_id, request.symbol) is None
    broker.place_order(handle.order_request())  # the client works on: a fresh connection
    assert len(handle.server.requests_to("create_order")) == 1


@pytest.mark.parametrize("name", ["ALPACA", "OKX"])
def test_a_lease_that_lapses_while_the_order_waits_on_its_budget_sends_nothing(venue_handle, name):
    """The key's budget holds the order for 30 s; the lease's local deadline is 5 s away. The
    engine's check before the wait passed; the transport's, after it, refuses."""
    handle = venue_handle(name)
    clock = FakeClock()
    key = RequestBudget(1 / 30, 1.0, clock=clock, wait=clock.advance)
    budgets = Budgets(public=RequestBudget(1e6, 1e6, clock=clock), private=key)
    broker = handle.kind.adapter(handle.spec(), clock=clock, budgets=budgets)
    handle.built.append(broker)
    broker.fetch_balance()
    fence = LeaseFence("user/a/" + name, "node-a", 3, clock.monotonic() + 5.0, clock)
    fence.check()  # the engine's own look, before the order waits
    key.acquire()  # spent: the order's request waits 30 s
    request = dataclasses.replace(handle.order_request(), last_look=fence.check)
    with pytest.raises(LeaseLostError, match="local deadline"):
        broker.place_order(request)
    assert budgets.waited_seconds >= 30.0
    assert handle.server.requests_to("create_order") == []


def test_the_last_look_runs_only_in_the_thread_that_armed_it_and_until_done():
    look = LastLook()
    seen: list[str] = []
    look()  # nothing armed: nothing runs
    with look.armed(lambda: seen.append("order")):

        def other_thread() -> None:  # another thread's order on the same client
            look()  # not this thread's check
            with look.armed(lambda: seen.append("other")):
                look()
            look.done()

        other = threading.Thread(target=other_thread)
        other.start()
        other.join(5)
        assert seen == ["other"]
        look()  # still armed here: the other thread neither ran nor disarmed it
        look()
        assert seen == ["other", "order", "order"]
        look.done()  # the order's request is written: a read-back is not looked at
        look()
    assert seen == ["other", "order", "order"]
    with look.armed(None):
        look()
    assert seen == ["other", "order", "order"]


def test_connections_through_an_http_proxy_look_before_they_write_too():
    transport = Transport(last_look=LastLook())
    try:
        manager = transport.proxy_manager_for("http://127.0.0.1:9")  # made, never connected
        direct = transport.poolmanager.pool_classes_by_scheme
        assert manager.pool_classes_by_scheme.keys() == direct.keys() == {"http", "https"}
        for scheme in ("http", "https"):
            assert manager.pool_classes_by_scheme[scheme].ConnectionCls.__name__.startswith(
                "Looking"
            )
    finally:
        transport.close()
