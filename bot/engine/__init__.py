"""One account's trading cycle: orders, reconciliation, risk, the guarded broker."""
