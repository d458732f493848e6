"""`matcalc serve`: a local web page (KaTeX shipped inside, no network needed) and its JSON API.

`create_app()` builds the ASGI application (Starlette), `serve()` runs it with uvicorn;
`matcalc.web.service` holds what the API computes, independent of HTTP."""
from __future__ import annotations


def add_serve_parser(sub, options: bool = True) -> None:
    """The `matcalc serve` subcommand and (unless options=False) its arguments (the CLI's
    parser; no web import here)."""
    s = sub.add_parser("serve", help="serve the web page on a local address",
                       description="serve the web page and its JSON API (POST /api/derive)")
    if not options:
        return
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--open", action="store_true", help="open the page in the default browser")
    s.add_argument("--budget", type=float, default=10.0, metavar="SECONDS",
                   help="work budget of one derivation, in seconds (default 10)")


def serve_command(args) -> int:
    """Run `matcalc serve` with parsed arguments."""
    from matcalc.errors import MatcalcError
    try:
        from .app import serve
    except ImportError as e:
        raise MatcalcError(f"matcalc serve needs the web extra: pip install 'matcalc[web]' ({e})") from None
    serve(args.host, args.port, open_browser=args.open, budget=args.budget)
    return 0
