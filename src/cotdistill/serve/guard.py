"""What keeps one client from stalling or breaking the server: limits, the API key, the bind check.

Why a module of its own: these are the server's promises to everyone *but* the one client, kept
in one place and in front of the model. :class:`Limits` bounds what one request may ask and what
all of them may queue; :class:`ApiKeyMiddleware` answers 401 before a body is read; and
:func:`check_exposure` refuses to listen beyond loopback without a key, because the server has no
other authentication. The checks inside requests (types, ranges, token ids) are the protocol's.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from cotdistill.errors import CotdistillError
from cotdistill.serve.protocol import ApiError

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """The bounds on one request and on all queued work (each exceeded one is a 4xx answer)."""

    max_body_bytes: int = 1 << 20  # a JSON request body (413 beyond)
    max_file_bytes: int = 64 << 20  # a Batch API upload, ``POST /v1/files`` (413 beyond)
    max_request_rows: int = 128  # prompts x n of one request or batch line (400 beyond)
    max_queued_rows: int = 512  # interactive rows queued or running, all clients (429 beyond)
    max_connections: int = 256  # uvicorn's limit_concurrency (503 beyond)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise CotdistillError(f"serve: {name.replace('_', '-')} must be at least 1, "
                                      f"got {value}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback ``host`` without an API key: the server has no other protection."""
    if not is_loopback(host) and not api_key:
        raise CotdistillError(
            f"serve: refusing to listen on {host}, which is not loopback, without --api-key "
            "(the server has no other authentication); set --api-key or use --host 127.0.0.1")


async def send_error(send: Any, exc: ApiError, *headers: tuple[bytes, bytes]) -> None:
    """Answer with ``exc`` straight from ASGI middleware (before the app sees the request)."""
    body = json.dumps(exc.body()).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


DRAIN_FACTOR = 16  # a body up to 16 x the limit is read (and dropped) before the 413


async def drain(receive: Any) -> None:
    """Read a refused body to its end, keeping none of it: closing a socket with unread data
    resets the connection, and the client would see a reset instead of the 413."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class BodyLimitMiddleware:
    """ASGI middleware: a body past its limit is a 413 OpenAI error.

    Refused when its ``Content-Length`` says so, the body read and dropped first (up to
    :data:`DRAIN_FACTOR` x the limit) so that the client reads the answer; a body without a
    length (chunked) fails as soon as the bytes received pass the limit. Uploads (``POST /v1/files``) have their own limit.
    (Starlette's ``max_body_size`` answers in plain text, which OpenAI clients cannot read.)
    """

    def __init__(self, app: Any, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = scope["path"] == "/v1/files"
        limit = self.limits.max_file_bytes if upload else self.limits.max_body_bytes
        too_large = ApiError(413, f"the request body is larger than this server's limit of "
                             f"{limit} bytes", code="request_too_large")
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            if int(length) <= DRAIN_FACTOR * limit:  # else the connection is simply closed
                await drain(receive)
            return await send_error(send, too_large, (b"connection", b"close"))
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large  # inside the app: its ApiError handler answers
            return message

        await self.app(scope, limited, send)


class ApiKeyMiddleware:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <key>`` (401 otherwise).

    Pure ASGI, so a refused request is answered before its body is read.
    """

    def __init__(self, app: Any, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                refused = ApiError(401, "Incorrect or missing API key: send 'Authorization: "
                                   "Bearer <key>'", code="invalid_api_key")
                return await send_error(send, refused, (b"www-authenticate", b"Bearer"))
        await self.app(scope, receive, send)


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


async def unless_disconnected(receive: Any, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then :class:`ClientGone`.

    ``receive`` is the request's ASGI receive, its body already read: its next message is
    ``http.disconnect``, sent by uvicorn as soon as the connection is lost.
    """

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody awaits it
        raise ClientGone
    return task.result()
