"""A venue that answers with given bodies: a venue's recorded answers served over real HTTP,
so an adapter's real SDK parses exactly what the venue sent (contract tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .core import Market
from .server import Request, Response, Venue

Answer = Response | Callable[[Request], Response]


class CannedVenue(Venue):
    """Each route answers from its queue of answers; the last one repeats.

    An answer is a ``Response`` or a function of the request (to echo what was asked).
    Requests to paths with no answer get the server's 404, so a test sees every call the
    SDK makes. No credential is checked.
    """

    def __init__(self, name: str) -> None:
        super().__init__(Market())
        self.name = name

    def answer(self, method: str, path: str, *answers: Answer, route: str | None = None) -> None:
        """Serve ``answers`` in turn to ``method path`` (the path exact, no query)."""
        queue = list(answers)
        if not queue:
            raise ValueError("give at least one answer")

        def handler(req: Request) -> Response:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            return item(req) if callable(item) else item

        self.route(method, re.escape(path), route or path, handler)


def body(entry: dict) -> Response:
    """A fixture entry (``{"body": ..., "status": ...}``) as the answer the venue gave."""
    return Response(int(entry.get("status", 200)), entry["body"])
