"""``python -m bot``: run the daemon, as ``python3 bot.py`` does."""

from bot.cli.daemon import run

run()
