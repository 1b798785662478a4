"""Coinbase Advanced Trade through coinbase-advanced-py."""
