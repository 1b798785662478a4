"""Test doubles that ship with NIJA: fake clock, candles, the loopback emulator, the daemon harness."""
