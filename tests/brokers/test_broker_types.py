"""The plain broker types: candles, order requests, account references, credentials."""

from __future__ import annotations

import pytest

from bot.model import AccountRef, Candles, Credentials, OrderRequest, OrderType, Side

T0 = 1_700_000_000_000


def candles(n: int) -> Candles:
    return Candles.from_rows([[T0 + i * 300_000, 1, 2, 0.5, 1.5, 10] for i in range(n)][::-1])


def test_rows_are_sorted_oldest_first():
    c = candles(3)
    assert list(c.timestamp_ms) == [T0, T0 + 300_000, T0 + 600_000] and len(c) == 3


@pytest.mark.parametrize(
    ("now_offset_s", "kept"),
    [(899.999, 2), (900, 3), (600, 2), (599.9, 1), (0, 0), (10_000, 3)],
)
def test_closed_by_keeps_only_candles_that_have_closed(now_offset_s, kept):
    c = candles(3)  # 5-minute candles opening at T0, T0+5m, T0+10m
    out = c.closed_by(T0 / 1000 + now_offset_s, "5m")
    assert len(out) == kept and list(out.close) == list(c.close[:kept])


def test_order_requests_refuse_what_no_venue_would_take():
    with pytest.raises(ValueError, match="client_order_id"):
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "", amount=1)
    with pytest.raises(ValueError, match="exactly one"):
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "c", amount=1, quote_amount=5)
    with pytest.raises(ValueError, match="positive"):
        OrderRequest("BTC/USD", Side.BUY, OrderType.MARKET, "c", amount=float("nan"))
    with pytest.raises(ValueError, match="limit_price"):
        OrderRequest("BTC/USD", Side.BUY, OrderType.LIMIT, "c", amount=1)


def test_account_keys_and_credentials_never_show_secrets():
    ref = AccountRef("User", "Alice", "kraken")
    assert ref.key == "user/alice/KRAKEN" == str(ref)
    creds = Credentials("FAKE-KEY-TYPES-1", "FAKE-SECRET-TYPES-1", "FAKE-PASS-TYPES-1")
    assert "FAKE" not in repr(creds) and creds.secrets() == [
        "FAKE-KEY-TYPES-1",
        "FAKE-SECRET-TYPES-1",
        "FAKE-PASS-TYPES-1",
    ]
