"""The HTTP side: the FastAPI app over engine, protocol and Batch API store, and a test server.

Why a module of its own: it is the only part that speaks HTTP (routes, status codes, the JSON
error answer for every failure, the request counters of ``GET /stats``) and the only one that
loads a model; the parts below it take their inputs as arguments. :func:`running_server` serves
the app on loopback in a background thread, for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from cotdistill.serve.batches import BatchStore
from cotdistill.serve.engine import Engine
from cotdistill.serve.protocol import ApiError, Protocol


class Service:
    """One app's state: the engine, the protocol over it, the Batch API store, the counters."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.protocol = Protocol(engine, model_name)
        self.lock = threading.Lock()  # the counters here and the store's files and batches
        self.store = BatchStore(engine, self.protocol, self.lock)
        self.requests = 0
        self.completions: Counter[str] = Counter()

    def stats(self) -> dict:
        store = self.store
        with self.lock:
            return {"requests": self.requests, "completions": dict(self.completions),
                    "batch_lines": store.batch_lines, "batches": len(store.batches),
                    "generate_calls": self.engine.generate_calls,
                    "generated_rows": self.engine.generated_rows}


def create_app(model_spec: str, *, max_batch: int = 8, batch_window_s: float = 0.01) -> FastAPI:
    """A FastAPI app serving ``model_spec`` (a model spec as ``load_causal_lm`` takes it).

    The model is loaded here, before the app exists; its name in the API is ``model_spec``.
    ``app.state.service`` holds the state (``.engine.generate_calls`` counts model calls).
    """
    from cotdistill.lm.store import load_causal_lm

    model, tokenizer = load_causal_lm(model_spec, "serve --model", for_generation=True)
    engine = Engine(model, tokenizer, max_batch=max_batch, batch_window_s=batch_window_s)
    service = Service(engine, model_spec)
    protocol, store = service.protocol, service.store

    @asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(engine.close)

    app = FastAPI(title="cotdistill OpenAI-compatible server", lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(),
                            status_code=exc.status_code)

    @app.middleware("http")
    async def count(request: Request, call_next):
        if request.url.path.startswith("/v1/"):
            with service.lock:
                service.requests += 1
        return await call_next(request)

    async def json_body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None

    async def complete(endpoint: str, request: Request) -> dict:
        prepared = protocol.prepare(endpoint, await json_body(request))
        job = engine.submit(prepared.rows, prepared.max_tokens)
        try:
            results = await asyncio.wrap_future(job.future)
        except Exception as exc:
            raise ApiError(500, f"generation failed: {exc}", kind="server_error") from None
        with service.lock:
            service.completions[endpoint] += 1
        return protocol.format(prepared, results)

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [protocol.model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model_info(model_id: str) -> dict:
        protocol.check_model({"model": model_id})
        return protocol.model_card()

    @app.post("/v1/completions")
    async def completions(request: Request) -> dict:
        return await complete("/v1/completions", request)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> dict:
        return await complete("/v1/chat/completions", request)

    @app.post("/v1/files")
    async def upload(request: Request) -> dict:
        return store.upload(await request.body(), request.headers.get("content-type", ""))

    @app.get("/v1/files")
    async def list_files() -> dict:
        return store.list_files()

    @app.get("/v1/files/{file_id}")
    async def file_info(file_id: str) -> dict:
        return store.file(file_id)

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        return Response(store.file_content(file_id), media_type="application/octet-stream")

    @app.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str) -> dict:
        return store.delete_file(file_id)

    @app.post("/v1/batches")
    async def create_batch(request: Request) -> dict:
        return store.create_batch(await json_body(request))

    @app.get("/v1/batches")
    async def list_batches() -> dict:
        return store.list_batches()

    @app.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str) -> dict:
        return store.batch(batch_id)

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> dict:
        return store.cancel_batch(batch_id)

    @app.get("/stats")
    @app.get("/v1/stats")
    async def stats() -> dict:
        return service.stats()

    return app


@contextmanager
def running_server(model_spec: str, *, host: str = "127.0.0.1", port: int = 0,
                   **app_kwargs) -> Iterator[str]:
    """Serve ``model_spec`` with uvicorn in a background thread; yield ``http://HOST:PORT/v1``.

    ``port=0`` picks a free port. ``app_kwargs`` go to :func:`create_app`. On exit the server
    shuts down (open connections get 2 s) and the worker thread stops.
    """
    import urllib.request

    import uvicorn

    app = create_app(model_spec, **app_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    base_url = f"http://{host}:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server thread ended while starting")
            if server.started:
                try:
                    with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {port} did not answer within 30 s")
            time.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
