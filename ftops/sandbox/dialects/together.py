from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from ftops.sandbox.dialects import Dialect


class TogetherDialect(Dialect):
    name = "together"
    prefix = "/together/v1"

    def rules(self) -> list[Rule]:
        return []

    def authenticate(self, request: Request, endpoint: str) -> None:
        pass
