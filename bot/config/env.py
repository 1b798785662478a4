"""The one way NIJA reads its environment: ``.env`` under the real environment.

The daemon (``bot.py``) and the check commands both call ``load_env``, so both see the
same variables: the file's, with every variable of the real environment winning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values


def load_env(path: str | Path = ".env", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of the dotenv file ``path`` (when it exists) overlaid by ``environ``
    (``os.environ`` by default), which wins. A name without a value in the file is skipped.

    Values are taken literally: no ``${VAR}`` expansion, which would silently change a
    secret such as an OKX passphrase ``pa$$w0rd${X}``.
    """
    environ = os.environ if environ is None else environ
    from_file: dict[str, str | None] = {}
    if Path(path).is_file():
        from_file = dict(dotenv_values(path, encoding="utf-8", interpolate=False))
    merged = {name: value for name, value in from_file.items() if value is not None}
    merged.update(environ)
    return merged
