"""The state store: orders, fills, positions, cycles, health (SQLite, or PostgreSQL)."""
