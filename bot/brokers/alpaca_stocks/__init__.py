"""Alpaca (US stocks) through alpaca-py."""
