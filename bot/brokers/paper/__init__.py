"""The paper broker: simulated fills over a real or synthetic market."""
