"""The venue layer: what the accounts on one venue share (its market data, its public
request budget, its health), between the engine and the brokers."""
