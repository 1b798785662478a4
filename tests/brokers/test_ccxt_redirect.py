"""redirect_urls over the real url tables of the installed ccxt's kraken, okx and binance."""

from __future__ import annotations

import copy

import ccxt
import pytest

from bot.brokers.ccxt.config import redirect_urls

BASE = "http://127.0.0.1:5555"


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("exchange_id", ["kraken", "okx", "binance"])
def test_every_http_url_moves_to_the_base_and_the_table_is_not_mutated(exchange_id):
    ex = getattr(ccxt, exchange_id)()
    original = copy.deepcopy(ex.urls["api"])
    moved = redirect_urls(ex.urls["api"], BASE, getattr(ex, "hostname", None))
    assert ex.urls["api"] == original
    urls = list(_strings(moved))
    assert urls, "the table has URLs"
    for url in urls:
        assert url.startswith(BASE), url
        assert "{hostname}" not in url


def test_kraken_paths_are_kept():
    moved = redirect_urls(ccxt.kraken().urls["api"], BASE)
    assert moved["public"] == BASE
    assert moved["private"] == BASE
    assert moved["zendesk"] == BASE + "/api/v2/help_center/en-us/articles"


def test_binance_paths_are_kept():
    moved = redirect_urls(ccxt.binance().urls["api"], BASE)
    assert moved["public"] == BASE + "/api/v3"
    assert moved["private"] == BASE + "/api/v3"
    assert moved["sapi"] == BASE + "/sapi/v1"
    assert moved["fapiPublic"] == BASE + "/fapi/v1"


def test_okx_hostname_placeholder_is_filled_then_moved():
    ex = ccxt.okx()
    assert ex.urls["api"]["rest"] == "https://{hostname}"
    assert redirect_urls(ex.urls["api"], BASE, ex.hostname) == {"rest": BASE}
    # Without a base URL the placeholder would be the venue's own host.
    assert redirect_urls({"rest": "https://{hostname}/x"}, "https://www.okx.com", ex.hostname) == {
        "rest": "https://www.okx.com/x"
    }


def test_websocket_urls_and_non_strings_are_left_alone():
    table = {"ws": "wss://ws.kraken.com", "n": 3, "nested": ["https://a.example/p?q=1"]}
    assert redirect_urls(table, BASE + "/") == {
        "ws": "wss://ws.kraken.com",
        "n": 3,
        "nested": [BASE + "/p?q=1"],
    }


def test_a_base_path_prefixes_the_venue_path():
    moved = redirect_urls({"public": "https://api.binance.com/api/v3"}, BASE + "/binance/")
    assert moved == {"public": BASE + "/binance/api/v3"}
