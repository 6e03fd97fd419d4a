"""The HTTP side: the FastAPI app over engine, protocol and Batch API store, and the servers.

Why a module of its own: it is the only part that speaks HTTP (routes, status codes, the JSON
error answer for every failure, the request counters of ``GET /stats``) and the only one that
loads a model; the parts below it take their inputs as arguments. :func:`serve` is what
``cotdistill serve`` runs; :func:`running_server` serves the app on loopback in a background
thread, for tests and benchmarks. Both use :func:`uvicorn_config`, so both have the same limits.

A request's life: the body is capped (413, :class:`~.guard.BodyLimitMiddleware`), parsed and checked and
tokenised in a worker thread (never on the event loop), then queued (429 when the queue is
full); if its client disconnects meanwhile, its job is cancelled in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from cotdistill.serve.batches import BatchStore
from cotdistill.serve.engine import Cancelled, Engine, QueueFull, ShuttingDown
from cotdistill.serve.guard import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    ClientGone,
    Limits,
    check_exposure,
    unless_disconnected,
)
from cotdistill.serve.protocol import ApiError, Protocol, parse_json

log = logging.getLogger(__name__)


class Service:
    """One app's state: the engine, the protocol over it, the Batch API store, the counters."""

    def __init__(self, engine: Engine, model_name: str, limits: Limits) -> None:
        self.engine = engine
        self.limits = limits
        self.protocol = Protocol(engine, model_name, max_rows=limits.max_request_rows)
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
                    "generated_rows": self.engine.generated_rows,
                    "queued_rows": self.engine.queued_rows,
                    "queued_batch_rows": self.engine.queued_batch_rows}


def create_app(model_spec: str, *, max_batch: int = 8, batch_window_s: float = 0.01,
               limits: Limits | None = None, api_key: str | None = None) -> FastAPI:
    """A FastAPI app serving ``model_spec`` (a model spec as ``load_causal_lm`` takes it).

    The model is loaded here, before the app exists; its name in the API is ``model_spec``.
    ``app.state.service`` holds the state (``.engine.generate_calls`` counts model calls).
    ``limits`` bound requests and the queue (defaults: :class:`Limits`); with ``api_key``
    every request needs ``Authorization: Bearer <api_key>``.
    """
    from cotdistill.lm.store import load_causal_lm

    limits = limits or Limits()
    model, tokenizer = load_causal_lm(model_spec, "serve --model", for_generation=True)
    engine = Engine(model, tokenizer, max_batch=max_batch, batch_window_s=batch_window_s,
                    max_queued_rows=limits.max_queued_rows)
    service = Service(engine, model_spec, limits)

    @asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(engine.close)

    app = FastAPI(title="cotdistill OpenAI-compatible server", lifespan=lifespan)
    app.state.service = service
    _add_middleware(app, service, api_key)
    _add_error_answers(app)
    app.include_router(_completion_routes(service))
    app.include_router(_batch_api_routes(service))
    return app


def _add_middleware(app: FastAPI, service: Service, api_key: str | None) -> None:
    """Body cap, API key, request counter: the last added runs first."""
    app.add_middleware(BodyLimitMiddleware, limits=service.limits)
    if api_key:  # outside the body cap: a refused request is not read at all
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)

    @app.middleware("http")
    async def count(request: Request, call_next):
        if request.url.path.startswith("/v1/"):
            with service.lock:
                service.requests += 1
        return await call_next(request)


def _add_error_answers(app: FastAPI) -> None:
    """Every failure answers with OpenAI's JSON error body."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse(ApiError(500, f"internal error: {type(exc).__name__}",
                                     kind="server_error").body(), status_code=500)


def _completion_routes(service: Service) -> APIRouter:
    """The models, the two completion endpoints, and the counters."""
    engine, protocol = service.engine, service.protocol
    router = APIRouter()

    async def complete(endpoint: str, request: Request) -> Response:
        raw = await request.body()
        try:  # parsing, checks and tokenising off the event loop
            prepared = await unless_disconnected(request.receive, asyncio.to_thread(
                lambda: protocol.prepare(endpoint, parse_json(raw))))
            job = engine.submit(prepared.rows, prepared.max_tokens)
        except QueueFull as exc:
            raise ApiError(429, str(exc), code="queue_full", kind="rate_limit_error",
                           headers={"Retry-After": "1"}) from None
        except ClientGone:
            return Response(status_code=499)  # nobody reads it
        try:
            results = await unless_disconnected(request.receive,
                                                asyncio.wrap_future(job.future))
        except ClientGone:
            engine.cancel(job)
            return Response(status_code=499)
        except (ShuttingDown, Cancelled) as exc:
            raise ApiError(503, f"the server is stopping: {exc}", kind="server_error") from None
        except Exception as exc:  # noqa: BLE001 - a failed generate call fails its requests
            raise ApiError(500, f"generation failed: {exc}", kind="server_error") from None
        with service.lock:
            service.completions[endpoint] += 1
        return JSONResponse(protocol.format(prepared, results))

    @router.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [protocol.model_card()]}

    @router.get("/v1/models/{model_id:path}")
    async def model_info(model_id: str) -> dict:
        protocol.check_model({"model": model_id})
        return protocol.model_card()

    @router.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await complete("/v1/completions", request)

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await complete("/v1/chat/completions", request)

    @router.get("/stats")
    @router.get("/v1/stats")
    async def stats() -> dict:
        return service.stats()

    return router


def _batch_api_routes(service: Service) -> APIRouter:
    """OpenAI's Files and Batches endpoints over the store."""
    store = service.store
    router = APIRouter()

    async def json_body(request: Request) -> Any:
        return await asyncio.to_thread(parse_json, await request.body())

    @router.post("/v1/files")
    async def upload(request: Request) -> dict:
        return store.upload(await request.body(), request.headers.get("content-type", ""))

    @router.get("/v1/files")
    async def list_files() -> dict:
        return store.list_files()

    @router.get("/v1/files/{file_id}")
    async def file_info(file_id: str) -> dict:
        return store.file(file_id)

    @router.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        return Response(store.file_content(file_id), media_type="application/octet-stream")

    @router.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str) -> dict:
        return store.delete_file(file_id)

    @router.post("/v1/batches")
    async def create_batch(request: Request) -> dict:
        return store.create_batch(await json_body(request))

    @router.get("/v1/batches")
    async def list_batches(limit: int = 20, after: str | None = None) -> dict:
        return store.list_batches(limit, after)

    @router.get("/v1/batches/{batch_id}")
    async def get_batch(batch_id: str) -> dict:
        return store.batch(batch_id)

    @router.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> dict:
        return store.cancel_batch(batch_id)

    return router


def uvicorn_config(app: FastAPI, *, limits: Limits | None = None, log_level: str = "warning",
                   **kwargs: Any):
    """The uvicorn settings of every server of this module.

    ``limit_concurrency`` caps connections and tasks (503 beyond); a graceful stop waits 2 s
    for open connections at most (the engine has failed their jobs with 503 by then).
    """
    import uvicorn

    limits = limits or app.state.service.limits
    return uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=2,
                          limit_concurrency=limits.max_connections, **kwargs)


def _server(config):
    """A uvicorn server whose stop first stops the engine, so no request waits on the model."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            config.app.state.service.engine.stop()
            await super().shutdown(sockets)

    return Server(config)


def serve(model_spec: str, *, host: str, port: int, max_batch: int, limits: Limits,
          api_key: str | None) -> None:
    """What ``cotdistill serve`` runs: serve until Ctrl-C (or SIGTERM), then stop cleanly.

    A non-loopback ``host`` without ``api_key`` is refused before the model is loaded.
    """
    check_exposure(host, api_key)
    app = create_app(model_spec, max_batch=max_batch, limits=limits, api_key=api_key)
    server = _server(uvicorn_config(app, host=host, port=port, log_level="info"))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once stopped
        pass
    log.info("cotdistill serve: stopped")


@contextmanager
def running_server(model_spec: str, *, host: str = "127.0.0.1", port: int = 0,
                   api_key: str | None = None, **app_kwargs) -> Iterator[str]:
    """Serve ``model_spec`` with uvicorn in a background thread; yield ``http://HOST:PORT/v1``.

    ``port=0`` picks a free port. ``app_kwargs`` go to :func:`create_app`. On exit the server
    shuts down (open connections get 2 s) and the worker thread stops.
    """
    import urllib.request

    app = create_app(model_spec, api_key=api_key, **app_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = _server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    base_url = f"http://{host}:{port}/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        deadline = time.monotonic() + 30
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server thread ended while starting")
            if server.started:
                try:
                    ready = urllib.request.Request(f"{base_url}/models", headers=headers)
                    with urllib.request.urlopen(ready, timeout=2) as answer:
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
