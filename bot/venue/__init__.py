"""The venue layer: what the accounts on one venue share (its health; its market data and
request budget as they land), between the engine and the brokers."""
