"""The commands users type: the check scripts."""
