"""Alerts: what the operator is told on Telegram or a webhook, through a queue that never
delays trading.

The daemon logs every event worth an alert under a fixed event name; ``bot.alerts.tap``
is a logging handler that turns those lines into ``AlertEvent``s (``bot.alerts.sources``
is the table) and hands them to the ``Notifier`` (``bot.alerts.notifier``), whose own
thread deduplicates and rate-limits them (``bot.alerts.dedupe``) and passes each to every
channel's own sender thread (``bot.alerts.sender``; ``bot.alerts.channels``). Every text
passes the daemon's ``Redactor`` on the way out. ``bot.alerts.wiring`` builds all of it
from the settings. The engine knows nothing of alerts. docs/OPERATIONS.md is the reference.
"""
