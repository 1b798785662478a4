""".env.example as a user would fill it in: every commented-out ``NAME=value`` line taken
as set (shared by the settings' and the unknown-variables' tests)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from dotenv import dotenv_values

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def uncommented_env_example() -> dict[str, str]:
    text = ENV_EXAMPLE.read_text()
    lines = [re.sub(r"^#\s*(?=[A-Z][A-Z0-9_]*=)", "", line) for line in text.splitlines()]
    parsed = dotenv_values(stream=io.StringIO("\n".join(lines)))
    return {k: v or "" for k, v in parsed.items()}
