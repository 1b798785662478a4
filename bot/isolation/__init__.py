"""Per-account isolation: circuit breakers, health states, failure classes."""
