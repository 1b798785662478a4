"""Strategies: pure decisions from closed candles."""
