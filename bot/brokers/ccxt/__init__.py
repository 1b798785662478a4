"""Kraken, OKX and Binance through ccxt."""
