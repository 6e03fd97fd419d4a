"""A fault-injecting HTTP proxy on loopback, for testing clients against a real server.

    with running_server(model) as upstream, FaultProxy(upstream) as proxy:
        proxy.schedule("429", "stall", "pass")   # applied to the next three requests, in order
        client = OpenAI(base_url=proxy.base_url, api_key="x")

Each request that arrives takes the next fault from the schedule ("pass" once it is empty):

- ``"pass"``: forwarded upstream and the answer relayed unchanged.
- ``"429"``: answered 429 with ``Retry-After: 1`` and an OpenAI-style error body; not forwarded.
- ``"500"``: answered 500 with an OpenAI-style error body; not forwarded.
- ``"stall"`` / ``"stall:SECONDS"``: the connection is held without an answer for ``stall_s``
  (or SECONDS), then reset; not forwarded. Make it longer than the client's timeout.
- ``"cut"``: forwarded upstream (the server does the work), then the connection is closed after
  the status line, the headers and half the body: the client sees a truncated response.
- ``"cut_before"``: the connection is reset as soon as the request has been read; not forwarded.

One request per connection (answers carry ``Connection: close``). ``forwarded`` counts requests
sent upstream, ``received`` all requests, ``applied`` lists ``(fault, method, path)``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

FAULTS = ("pass", "429", "500", "stall", "cut", "cut_before")
REASONS = {429: "Too Many Requests", 500: "Internal Server Error"}


class FaultProxy:
    def __init__(self, upstream_base_url: str, faults: Iterable[str] = (), *,
                 stall_s: float = 5.0, host: str = "127.0.0.1") -> None:
        upstream = urlsplit(upstream_base_url)
        if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
            raise ValueError(f"need an http://HOST:PORT upstream, got {upstream_base_url!r}")
        self.upstream_host, self.upstream_port = upstream.hostname, upstream.port
        self.path = upstream.path.rstrip("/")
        self.host = host
        self.stall_s = stall_s
        self.port: int | None = None
        self.received = 0
        self.forwarded = 0
        self.applied: list[tuple[str, str, str]] = []
        self._faults: deque[str] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.schedule(*faults)

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the proxy is not running")
        return f"http://{self.host}:{self.port}{self.path}"

    def schedule(self, *faults: str) -> None:
        """Append faults for the next requests (see the module docstring for the kinds)."""
        for fault in faults:
            kind = fault.split(":", 1)[0]
            if kind not in FAULTS or (":" in fault and kind != "stall"):
                raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
            self._faults.append(fault)

    @property
    def pending(self) -> list[str]:
        return list(self._faults)

    # --- lifecycle

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, self.host, 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._loop is None:
            return

        async def stop() -> None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    # --- connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [(k.strip(), v.strip()) for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)]
        fields = {k.lower(): v for k, v in headers}
        if "chunked" in fields.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(fields.get("content-length", "0") or 0))
        self.received += 1
        fault = self._faults.popleft() if self._faults else "pass"
        self.applied.append((fault, method, target))
        kind = fault.split(":", 1)[0]
        if kind == "429":
            await _answer(writer, 429, "Rate limit reached (injected by FaultProxy)",
                          "requests", "rate_limit_exceeded", retry_after=1)
        elif kind == "500":
            await _answer(writer, 500, "The server had an error (injected by FaultProxy)",
                          "server_error", None)
        elif kind == "stall":
            seconds = float(fault.split(":", 1)[1]) if ":" in fault else self.stall_s
            await asyncio.sleep(seconds)
            _reset(writer)
        elif kind == "cut_before":
            _reset(writer)
        else:
            response = await self._forward(method, target, headers, body)
            if kind == "cut":
                head_end = response.find(b"\r\n\r\n") + 4
                writer.write(response[: head_end + (len(response) - head_end) // 2])
                await writer.drain()
                writer.close()  # orderly, so the client surely reads the head it got
            else:
                writer.write(response)
                await writer.drain()
                writer.close()

    async def _forward(self, method: str, target: str, headers: list[tuple[str, str]],
                       body: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        skip = {"host", "connection", "content-length", "transfer-encoding", "keep-alive",
                "proxy-connection"}
        out = [f"{method} {target} HTTP/1.1",
               f"Host: {self.upstream_host}:{self.upstream_port}",
               *(f"{k}: {v}" for k, v in headers if k.lower() not in skip),
               f"Content-Length: {len(body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(out).encode("latin-1") + body)
        await writer.drain()
        self.forwarded += 1
        response = await reader.read()  # Connection: close -> the answer ends at EOF
        writer.close()
        return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _answer(writer: asyncio.StreamWriter, status: int, message: str, kind: str,
                  code: str | None, *, retry_after: int | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": code}}).encode()
    head = [f"HTTP/1.1 {status} {REASONS[status]}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, not an orderly shutdown."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
