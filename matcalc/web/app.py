"""The ASGI application behind `matcalc serve`: the page, its static files and the JSON API.

Safe by default: request bodies are capped, only JSON is accepted, every derivation runs in a
small pool of worker threads (so the event loop keeps answering) under the engine's work budget
and a wall-clock timeout, and every error is a JSON object — never a traceback.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from matcalc.errors import MatcalcError

from . import service

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind}, status_code=status)


async def _read_json(request: Request, limit: int):
    """The request's JSON body; a body over `limit` bytes is refused without reading it all."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(415, "send the request as JSON (Content-Type: application/json)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise HTTPException(413, f"the request body is larger than {limit} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise HTTPException(413, f"the request body is larger than {limit} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise service.RequestError(f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise service.RequestError("the request body nests too deeply") from None


class Workers:
    """A small pool of derivation threads with the engine's budget and a wall-clock limit."""

    def __init__(self, budget: float | None, timeout: float, workers: int):
        self.budget, self.timeout, self.workers = budget, timeout, workers
        self.queue_timeout = 4 * timeout
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, fn, body) -> JSONResponse:
        """fn(body, budget) in a worker thread: `timeout` seconds once it starts (a request waits
        at most `queue_timeout` for a free worker first)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="matcalc-web")
        loop = asyncio.get_running_loop()
        started = loop.create_future()

        def job():
            loop.call_soon_threadsafe(lambda: started.done() or started.set_result(None))
            return fn(body, self.budget)

        fut = self._pool.submit(job)
        done = asyncio.wrap_future(fut)
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if unanswered
        try:
            await asyncio.wait_for(asyncio.shield(started), self.queue_timeout)
        except asyncio.TimeoutError:
            fut.cancel()  # never starts
            return _error(503, "the server is busy with other derivations; try again", "ServerBusy")
        try:
            result = await asyncio.wait_for(asyncio.shield(done), self.timeout)
        except asyncio.TimeoutError:
            # Python cannot stop a running thread: the work finishes on its own, unanswered, and keeps
            # its worker until then (so runaway work never exceeds `workers` threads).
            return _error(503, f"the derivation took too long (over {self.timeout:g} s); "
                               f"simplify the expression or raise the server's --budget", "TimeoutError")
        except MatcalcError as e:
            return JSONResponse(service.error_body(e), status_code=400)
        return JSONResponse(result)


def _endpoint(fn):
    """A POST handler: read the JSON body, run fn(body, budget) on the app's workers."""
    async def handler(request: Request) -> Response:
        body = await _read_json(request, request.app.state.max_body)
        return await request.app.state.workers.run(fn, body)
    return handler


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    kind = {413: "RequestTooLarge", 415: "UnsupportedMediaType", 404: "NotFound"}.get(exc.status_code, "HTTPError")
    return _error(exc.status_code, str(exc.detail), kind)


async def _matcalc_error(request: Request, exc: MatcalcError) -> Response:
    return JSONResponse(service.error_body(exc), status_code=400)


async def _any_error(request: Request, exc: Exception) -> Response:
    return _error(500, f"internal error of the server ({type(exc).__name__}); please report it", "InternalError")


async def _security_headers(request: Request, call_next) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


ROUTES = [Route("/", _index), Route("/api/derive", _endpoint(service.derive), methods=["POST"]),
          Route("/api/check", _endpoint(service.check), methods=["POST"]),
          Route("/api/parse", _endpoint(service.parse), methods=["POST"]),
          Mount("/static", StaticFiles(directory=STATIC), name="static")]


def create_app(*, budget: float | None = 10.0, timeout: float | None = None, max_body: int = MAX_BODY,
               workers: int = 4, allowed_hosts: list[str] | None = None) -> Starlette:
    """The application. `budget`: the engine's work budget per derivation (seconds; passed as
    `budget=` where the engine accepts it); `timeout`: the wall-clock limit of one request's work
    once started (default: twice the budget, at least 1 s), after which it answers 503;
    `max_body`: the largest request body in bytes; `workers`: derivation threads; `allowed_hosts`:
    the Host headers accepted (the server passes the loopback names when it binds to loopback,
    against DNS rebinding)."""
    if timeout is None:
        timeout = max(2 * budget, 1.0) if budget else 60.0
    pool = Workers(budget, timeout, workers)

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.close()

    middleware = [Middleware(BaseHTTPMiddleware, dispatch=_security_headers)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=ROUTES, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, MatcalcError: _matcalc_error,
                                        Exception: _any_error})
    app.state.workers, app.state.max_body = pool, max_body
    app.state.budget, app.state.timeout = budget, timeout
    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = False,
          budget: float | None = 10.0) -> None:
    """Run the server (uvicorn) until interrupted; print its address first."""
    import uvicorn
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"] if host in LOOPBACK else None
    app = create_app(budget=budget, allowed_hosts=hosts)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    print(f"matcalc serving on {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        import threading
        import webbrowser
        threading.Timer(0.8, lambda: webbrowser.open(url)).start()
    server.run()
