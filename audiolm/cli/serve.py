"""`audiolm serve`: the REST API and the page (audiolm/serve/), on uvicorn."""

from __future__ import annotations

import argparse
import socket

from audiolm.cli.args import number, whole
from audiolm.errors import AudiolmError


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or a one-line error (address in use, no such host)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, UnicodeError) as error:
        raise AudiolmError(f"{host}:{port}: cannot listen ({getattr(error, 'strerror', None) or error})") from None
    return sock


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from audiolm.serve.app import create_app, load_bundles
    except ImportError as error:
        raise AudiolmError(f"audiolm serve needs the serve extra ({error.name} is missing): "
                           "pip install -c constraints.txt -e '.[serve]'") from None
    from audiolm.serve.settings import SETTINGS, ServeSettings

    settings = ServeSettings(**{name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None})
    names = [name.strip() for value in args.models or ["speech"] for name in value.split(",") if name.strip()]
    bundles = load_bundles(names)  # once, before the server takes a request: a bad bundle fails here, in one line
    app = create_app(bundles, settings)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"audiolm serve: {', '.join(bundles)} on http://{shown}:{port}/ (API docs: /docs); "
          f"{settings.workers} worker(s) x {settings.cpu_threads} thread(s), {settings.queue} waiting at most", flush=True)
    config = uvicorn.Config(app, log_level="warning" if args.quiet else "info", access_log=not args.quiet, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])  # Ctrl-C / SIGINT: a graceful stop (running jobs stop at their next step)
    except KeyboardInterrupt:  # uvicorn raises the signal again once it has stopped
        pass
    print("audiolm serve: stopped", flush=True)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    import dataclasses

    from audiolm.serve.settings import SETTINGS, ServeSettings

    p = commands.add_parser("serve", help="the REST API (docs at /docs) and a web page for every generation mode")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=whole("--port", 0, 65535), default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--models", action="append", metavar="BUNDLE[,BUNDLE]",
                   help="model bundles to serve, folders or `speech` / `piano` (default speech; the first is the default)")
    defaults = {field.name: field.default for field in dataclasses.fields(ServeSettings)}
    for name, setting in SETTINGS.items():
        parse = (whole(setting.flag, int(setting.low), int(setting.high)) if setting.whole
                 else number(setting.flag, setting.low, setting.high, above_low=setting.above_low))
        default = "" if defaults[name] is None else f" (default {defaults[name]:g})"
        p.add_argument(setting.flag, dest=name, type=parse, metavar="N" if setting.whole else "MB" if name == "upload_mb" else "S",
                       help=setting.help + default)
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.set_defaults(func=cmd_serve, models=None)
