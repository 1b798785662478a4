"""Broker adapters: one folder per venue family, one interface (base.py)."""
