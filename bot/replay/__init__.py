"""Replay: the real engine over a candle CSV."""
