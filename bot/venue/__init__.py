"""What the accounts on one venue share: its market data (and, later, its health and budget)."""
