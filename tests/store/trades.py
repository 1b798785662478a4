"""Round trips written into a real store as the engine writes them (tests of P&L reports)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.writer import OrderRecord, Store


@dataclass
class Desk:
    """One account's store, and round trips written as the engine writes them."""

    store: Store
    n: int = 0

    def order(
        self,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        fee_usd: float,
        at: float,
        fee_in_base: bool = False,
    ) -> str:
        self.n += 1
        cid = f"{self.store.account_key}-{self.n}"
        base = symbol.split("/")[0]
        self.store.record_order(
            OrderRecord(
                client_order_id=cid,
                account_key=self.store.account_key,
                intent_id=cid,
                symbol=symbol,
                side=side,
                type="market",
                amount=qty,
                quote_amount=None,
                limit_price=None,
                purpose="entry" if side == "buy" else "exit",
                status="filled",
                filled=qty,
                average_price=price,
                fee_usd=fee_usd,
                fee=fee_usd / price if fee_in_base else fee_usd,
                fee_currency=base if fee_in_base else "USD",
                created_at=at,
                updated_at=at,
            )
        )
        self.store.add_fill(cid, qty, price, fee_usd, at)
        return cid

    def buy(
        self,
        symbol: str,
        qty: float,
        price: float,
        fee_usd: float,
        at: float,
        fee_in_base: bool = False,
    ) -> tuple[int, float]:
        """An entry filled: the position holds what the fill left (a fee in the coin is not)."""
        cid = self.order(symbol, "buy", qty, price, fee_usd, at, fee_in_base)
        held = qty - (fee_usd / price if fee_in_base else 0.0)
        pos = self.store.open_position(symbol, held, price, price * 0.9, None, None, at, cid)
        return pos.id, held

    def round_trip(
        self,
        symbol: str,
        qty: float,
        entry: float,
        exit_: float,
        fees: tuple[float, float],
        opened: float,
        closed: float,
        fee_in_base: bool = False,
    ) -> float:
        """Buy, then sell all that is held; the realized P&L, net of both fees."""
        pos_id, held = self.buy(symbol, qty, entry, fees[0], opened, fee_in_base)
        self.order(symbol, "sell", held, exit_, fees[1], closed)
        realized = (exit_ - entry) * held - fees[0] - fees[1]
        self.store.close_position(pos_id, exit_, "exit", closed, realized)
        return realized
