"""NIJA: one trading thread per funded broker account, each isolated from the others."""
