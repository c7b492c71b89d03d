"""The body-size limit, wrapped around the whole application so it acts before anything reads.

:func:`guarded` refuses a body larger than the limit with 413
``api.body_too_large``, whether its size is announced (``Content-Length``)
or it is streamed (chunked).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from gateway.model.codes import Fault
from gateway.model.errors import GatewayError

DEFAULT_MAX_BODY: Final = 65_536

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(GatewayError):
    """A body streamed past the limit (one announced too large never reaches the app)."""

    code = Fault.API_BODY_TOO_LARGE


def guarded(app: Asgi, max_body_bytes: int = DEFAULT_MAX_BODY) -> Asgi:
    """``app`` behind a body-size limit: larger bodies get 413 ``api.body_too_large``,
    whether announced (Content-Length) or streamed (chunked), before the app acts."""

    async def refuse(send: Send) -> None:
        body = json.dumps(
            {
                "code": Fault.API_BODY_TOO_LARGE,
                "message": f"The body is larger than {max_body_bytes} bytes.",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            await refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    raise BodyTooLarge(f"The body is larger than {max_body_bytes} bytes.")
            return message

        await app(scope, counting_receive, send)

    return limited
