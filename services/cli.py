"""The `stt` command: `stt serve SERVICE ...` runs a service (a language service or
diarization), `stt router ...` the router, `stt worker ...` job workers, `stt up` the router in
front of every service that can run here with one worker, `stt transcribe FILE ...` sends a
file to one and prints what it heard, `stt fetch SERVICE` puts a service's model into its
cache, `stt check` asks a server whether it serves and `stt keys new TENANT` makes an API key
for the router's keys file. The servers take `--tls-cert`, `--tls-key` and `--tls-client-ca`
(TLS, mutual with a client CA); the clients `--tls-ca` (and `--tls-cert`, `--tls-key`) and
`--api-key-file`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import services
from services import registry

# Flags of `stt serve` (and `stt router`), each the same as a setting (and its variable).
SERVE_FLAGS = {
    "--model": (str, "model path or hub id"),
    "--host": (str, "address to bind"),
    "--grpc-port": (int, "gRPC port (0 picks a free one)"),
    "--http-port": (int, "HTTP port for /metrics, /healthz, /readyz"),
    "--max-concurrency": (int, "inferences at once"),
    "--max-queue": (int, "requests that may wait for a slot"),
    "--device": (str, "auto, cpu or cuda"),
    "--compute-type": (str, "precision, e.g. auto, int8, float16, float32"),
    "--log-level": (str, "debug, info, warning or error"),
}
ROUTER_FLAGS = ("--host", "--grpc-port", "--http-port", "--log-level")
# TLS flags of every server (`stt serve`, `stt router`, `stt worker`, `stt up`), by setting.
TLS_FLAGS = {
    "--tls-cert": ("tls_cert_file", "PEM certificate chain: serve TLS only"),
    "--tls-key": ("tls_key_file", "PEM private key of --tls-cert"),
    "--tls-client-ca": ("tls_client_ca_file", "PEM CA certificates clients must be signed by"),
}
# TLS and key flags of the clients (`stt transcribe`, `stt check`).
CLIENT_FLAGS = {
    "--tls-ca": "PEM CA certificates to verify the server with (TLS)",
    "--tls-cert": "PEM client certificate (mutual TLS)",
    "--tls-key": "PEM private key of --tls-cert",
    "--api-key-file": "file holding an API key of the router (authorization: Bearer KEY)",
}
# Flags of `stt worker`, each the same as a WORKER_* setting.
WORKER_FLAGS = {
    "--data-dir": (Path, "job store folder (default: ~/.local/share/stt-suite)"),
    "--database-url": (str, "PostgreSQL job store URL, instead of the data directory"),
    "--target": (str, "HOST:PORT of the router that transcribes each chunk"),
    "--diarization-target": (str, "HOST:PORT of the diarization service"),
    "--host": (str, "address the HTTP server binds"),
    "--http-port": (int, "HTTP port for /metrics, /healthz, /readyz"),
    "--log-level": (str, "debug, info, warning or error"),
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run a language service (or diarization) in the foreground"
    )
    serve.add_argument("service", choices=sorted(registry.SERVICES))
    for flag, (kind, text) in SERVE_FLAGS.items():
        serve.add_argument(flag, type=kind, help=f"{text} (default: from the environment)")
    _tls_flags(serve)
    serve.set_defaults(run=_serve)

    router = commands.add_parser("router", help="run the router in the foreground")
    router.add_argument("--routes", type=Path, help="YAML routing table (ROUTER_ROUTES_FILE)")
    for flag in ROUTER_FLAGS:
        kind, text = SERVE_FLAGS[flag]
        router.add_argument(flag, type=kind, help=f"{text} (default: from the environment)")
    _tls_flags(router)
    router.set_defaults(run=_router)

    up = commands.add_parser(
        "up", help="run the router and every language service that can run here, in one tree"
    )
    up.add_argument(
        "--port-offset", type=int, default=0, help="add this to every port (default: 0)"
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where jobs and their results are kept (default: ~/.local/share/stt-suite, "
        "or $XDG_DATA_HOME/stt-suite)",
    )
    up.add_argument(
        "--file-root",
        type=Path,
        action="append",
        default=[],
        help="a folder whose files jobs may name as file:// uris (repeat for more; "
        "JOBS_URI_FILE_ROOTS); default: none",
    )
    _tls_flags(up, "the router's ports")
    up.set_defaults(run=_up)

    worker = commands.add_parser("worker", help="run a job worker in the foreground")
    for flag, (kind, text) in WORKER_FLAGS.items():
        worker.add_argument(flag, type=kind, help=f"{text} (default: from the environment)")
    _tls_flags(worker, "the HTTP port")
    worker.set_defaults(run=_worker)

    fetch = commands.add_parser(
        "fetch", help="put a service's model into the cache `stt serve` reads, then exit"
    )
    fetch.add_argument("service", choices=sorted(registry.SERVICES))
    fetch.add_argument("--model", help="model path or hub id (default: from the environment)")
    fetch.set_defaults(run=_fetch)

    check = commands.add_parser(
        "check", help="exit 0 when a server's gRPC health says SERVING; print its info"
    )
    check.add_argument("--target", required=True, help="HOST:PORT of a service or router")
    check.add_argument(
        "--health-entry", default="", help="gRPC health entry to ask (default: the whole server)"
    )
    check.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    _client_flags(check)
    check.set_defaults(run=_check)

    transcribe = commands.add_parser("transcribe", help="recognise an audio file")
    transcribe.add_argument("file", help="audio file (wav, flac, mp3, ogg, webm, m4a)")
    transcribe.add_argument("--target", required=True, help="HOST:PORT of a service or router")
    transcribe.add_argument("--language", default="", help="BCP-47 code; default: detect")
    transcribe.add_argument("--words", action="store_true", help="word timings and confidences")
    transcribe.add_argument(
        "--phrase",
        action="append",
        default=[],
        help="an expected phrase to score (repeat for more); prints them ranked",
    )
    transcribe.add_argument("--json", action="store_true", help="print the whole response")
    transcribe.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")
    _client_flags(transcribe)
    transcribe.set_defaults(run=_transcribe)

    keys = commands.add_parser("keys", help="API keys for the router's keys file")
    key_commands = keys.add_subparsers(required=True, metavar="COMMAND")
    new_key = key_commands.add_parser(
        "new", help="print a fresh key for TENANT on stdout and its keys file line on stderr"
    )
    new_key.add_argument("tenant", help="the tenant the key names")
    new_key.add_argument(
        "--file", type=Path, help="append the line to this keys file (made with mode 0600)"
    )
    new_key.set_defaults(run=_keys_new)
    return parser


def _tls_flags(parser: argparse.ArgumentParser, ports: str = "the gRPC and HTTP ports") -> None:
    for flag, (_, text) in TLS_FLAGS.items():
        parser.add_argument(
            flag, type=Path, help=f"{text}, on {ports} (default: from the environment)"
        )


def _tls_values(args: argparse.Namespace) -> dict:
    """The TLS flags given, by setting name."""
    given = {setting: getattr(args, _dest(flag)) for flag, (setting, _) in TLS_FLAGS.items()}
    return {k: v for k, v in given.items() if v is not None}


def _dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


def _client_flags(parser: argparse.ArgumentParser) -> None:
    for flag, text in CLIENT_FLAGS.items():
        parser.add_argument(flag, type=Path, help=text)


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.core import logs, tracing
    from services.core.host import serve
    from services.core.server import SpeechServer
    from services.core.tls import TlsError

    module = registry.load(args.service)
    overrides = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag in SERVE_FLAGS
    }
    overrides.update(_tls_values(args))
    try:
        settings = module.Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        print(f"stt serve: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logs.configure(args.service, settings.log_level)
    tracing.configure(args.service, services.__version__)
    server_class = getattr(module, "Server", SpeechServer)
    try:
        server = server_class(args.service, settings, module.Backend(settings))
    except TlsError as error:  # certificate files that cannot be used
        print(f"stt serve: {error}", file=sys.stderr)
        return 2
    return _run_loop(serve(server))


def _router(args: argparse.Namespace) -> int:
    from services.core.host import serve
    from services.router.server import RouterServer

    overrides = {flag[2:].replace("-", "_") for flag in ROUTER_FLAGS}
    values = {name: getattr(args, name) for name in overrides}
    if args.routes is not None:
        values["routes_file"] = args.routes
    values.update(_tls_values(args))
    settings = _router_settings(values)
    if settings is None:
        return 2
    try:
        router = RouterServer(settings)
    except (ValueError, OSError) as error:  # a bad table or TLS or keys file, a port taken
        print(f"stt router: {error}", file=sys.stderr)
        return 2
    _configure_telemetry("router", settings.log_level)
    return _run_loop(serve(router))


def _up(args: argparse.Namespace) -> int:
    from services import stack, up
    from services.jobs.settings import default_data_dir
    from services.jobs.worker.settings import WORKER_HTTP_PORT
    from services.router.routing import RoutingTable
    from services.router.server import RouterServer

    members = stack.shifted(registry.MEMBERS, args.port_offset)
    router_port = stack.ROUTER_GRPC_PORT + args.port_offset
    values = {
        "host": "127.0.0.1",
        "grpc_port": router_port,
        "http_port": stack.ROUTER_HTTP_PORT + args.port_offset,
        "data_dir": args.data_dir or default_data_dir(),
        **_tls_values(args),
    }
    if args.file_root:
        values["jobs_uri_file_roots"] = args.file_root
    settings = _router_settings(values)
    if settings is None:
        return 2
    try:
        worker_env = stack.worker_env(settings, args.file_root)
    except ValueError as error:  # keys asked for, and no key for the worker
        print(f"stt up: {error}", file=sys.stderr)
        return 2
    _configure_telemetry("router", settings.log_level)
    running, skipped = stack.runnable(members)
    for service, why in skipped.items():
        logging.getLogger("stt.up").info("not started", extra={"member": service, "why": why})
    try:
        table = RoutingTable(stack.routing(members, running).overlay(settings.routing.table()))
        router = RouterServer(settings, table)
    except (ValueError, OSError) as error:  # a bad routing table, a port taken, no database
        print(f"stt up: {error}", file=sys.stderr)
        return 2
    worker = stack.worker_child(
        settings.jobs.data_dir,
        settings.jobs.database_url,
        router_port,
        WORKER_HTTP_PORT + args.port_offset,
        worker_env,
    )
    children = [*map(stack.service_child, running), worker]
    return _run_loop(up.run(router, children, settings.drain_grace_s))


def _worker(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.core.host import serve
    from services.jobs.settings import default_data_dir
    from services.jobs.worker.server import WorkerServer
    from services.jobs.worker.settings import WorkerSettings

    values = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag in WORKER_FLAGS
    }
    values = {k: v for k, v in values.items() if v is not None}
    values.update(_tls_values(args))
    try:
        settings = WorkerSettings(**values)
        if not settings.store.enabled:
            settings = WorkerSettings(**values, data_dir=default_data_dir())
    except ValidationError as error:
        print(f"stt worker: invalid settings:\n{error}", file=sys.stderr)
        return 2
    _configure_telemetry("worker", settings.log_level)
    try:
        server = WorkerServer(settings)
    except (ValueError, OSError) as error:  # no database, a TLS or key file, a port taken
        print(f"stt worker: {error}", file=sys.stderr)
        return 2
    return _run_loop(serve(server))


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Runs a server's main coroutine to its end on uvloop, whose event loop costs a gRPC
    request about a third less CPU than asyncio's own (the router overhead benchmark)."""
    import uvloop

    return uvloop.run(main)


def _router_settings(values: dict):
    from pydantic import ValidationError

    from services.router.settings import RouterSettings

    try:
        return RouterSettings(**{k: v for k, v in values.items() if v is not None})
    except (ValidationError, ValueError) as error:
        print(f"stt: invalid router settings:\n{error}", file=sys.stderr)
        return None


def _configure_telemetry(service: str, log_level: str) -> None:
    from services.core import logs, tracing

    logs.configure(service, log_level)
    tracing.configure(service, services.__version__)


def _fetch(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.core import logs

    module = registry.load(args.service)
    try:
        settings = module.Settings(**({"model": args.model} if args.model else {}))
    except ValidationError as error:
        print(f"stt fetch: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logs.configure(args.service, settings.log_level)
    try:
        path = module.fetch(settings)
    except (OSError, ValueError) as error:  # the hub's (offline, not found) and the disk's
        print(f"stt fetch: cannot fetch {settings.model!r}: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _access(args: argparse.Namespace, command: str):
    """The clients' TLS credentials and metadata from their flags; None when a file cannot
    be used (said on stderr)."""
    from services.core.client_auth import KeyFile
    from services.core.tls import channel_credentials

    try:
        credentials = None
        if args.tls_ca or args.tls_cert or args.tls_key:
            credentials = channel_credentials(args.tls_ca, args.tls_cert, args.tls_key)
        metadata = KeyFile(args.api_key_file).metadata() if args.api_key_file else ()
    except ValueError as error:  # TlsError, KeyFileError
        print(f"stt {command}: {error}", file=sys.stderr)
        return None
    return credentials, metadata


def _check(args: argparse.Namespace) -> int:
    from services import client

    access = _access(args, "check")
    if access is None:
        return 2
    try:
        info = client.check(args.target, args.health_entry, args.timeout, *access)
    except client.RecognizeError as error:
        print(f"stt check: {args.target}: {error.code}: {error.message}", file=sys.stderr)
        return 1
    print(client.to_json(info))
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    from services import client

    try:
        with open(args.file, "rb") as handle:
            content = handle.read()
    except OSError as error:
        print(f"stt transcribe: {error}", file=sys.stderr)
        return 2
    access = _access(args, "transcribe")
    if access is None:
        return 2
    credentials, metadata = access
    try:
        response = client.recognize(
            args.target,
            content,
            language=args.language,
            words=args.words,
            phrases=tuple(args.phrase),
            timeout=args.timeout,
            credentials=credentials,
            metadata=metadata,
        )
    except client.RecognizeError as error:
        print(f"stt transcribe: {error.code}: {error.message}", file=sys.stderr)
        return 1
    print(client.to_json(response) if args.json else client.to_text(response, args.words))
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    from services.router import keys

    try:
        key, line = keys.new_key(args.tenant)
    except ValueError as error:
        print(f"stt keys new: {error}", file=sys.stderr)
        return 2
    if args.file is not None:
        try:
            keys.append_line(args.file, line)
        except OSError as error:
            print(f"stt keys new: cannot add the key to {args.file}: {error}", file=sys.stderr)
            return 1
    print(key)
    print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
