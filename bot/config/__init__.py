"""Settings and accounts from the environment."""
