"""The reliability programs behind scripts/ (fault matrix, crash and restart)."""
