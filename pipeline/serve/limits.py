"""A request body is never read past its limit: the check sits under the app, on the byte
stream itself, so it holds for raw bodies, multipart uploads and chunked transfers alike (where
no Content-Length says the size up front)."""

from __future__ import annotations

from collections.abc import Callable

Scope = dict
Receive = Callable
Send = Callable


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """ASGI middleware: `BodyTooLarge` as soon as a request declares or sends more than `limit`
    bytes (the app's exception handler turns it into a 413)."""

    def __init__(self, app, limit: Callable[[str], int]):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        async def nothing_read() -> dict:
            raise BodyTooLarge(limit)

        await self.app(scope, nothing_read, send)
