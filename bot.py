#!/usr/bin/env python3
"""NIJA: trade every funded broker account in its own isolated thread until stopped.

Usage: python3 bot.py [--once]

Settings come from the environment and from .env (the real environment wins).
With no broker credentials at all it runs a demo on simulated accounts.

Exit codes: 0 clean stop (SIGTERM, SIGHUP, SIGINT, or --once done); 2 configuration or
start-up error (one line on stderr); 130 a second Ctrl-C forced the exit.
"""

from bot.cli.daemon import main

if __name__ == "__main__":
    raise SystemExit(main())
