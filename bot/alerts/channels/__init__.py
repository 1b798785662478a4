"""Where alerts go: Telegram's Bot API and a generic JSON webhook.

A channel makes one HTTP request per ``send`` (bounded by its timeout) and says how it
went (``Delivery``); whether and when to try again is the sender's (``bot.alerts.sender``),
the same for every channel. Channels know nothing of the daemon or the engine.
"""
