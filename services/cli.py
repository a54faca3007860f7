"""The `stt` command: `stt serve SERVICE ...` runs a language service, `stt transcribe FILE ...`
sends a file to one and prints what it heard."""

from __future__ import annotations

import argparse
import asyncio
import sys

import services
from services import registry

# Flags of `stt serve`, each the same as a setting (and its environment variable).
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a language service in the foreground")
    serve.add_argument("service", choices=sorted(registry.SERVICES))
    for flag, (kind, text) in SERVE_FLAGS.items():
        serve.add_argument(flag, type=kind, help=f"{text} (default: from the environment)")
    serve.set_defaults(run=_serve)

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
    transcribe.set_defaults(run=_transcribe)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.core import logs, tracing
    from services.core.server import SpeechServer, serve

    module = registry.load(args.service)
    overrides = {
        flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
        for flag in SERVE_FLAGS
    }
    try:
        settings = module.Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        print(f"stt serve: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logs.configure(args.service, settings.log_level)
    tracing.configure(args.service, services.__version__)
    server = SpeechServer(args.service, settings, module.Backend(settings))
    return asyncio.run(serve(server))


def _transcribe(args: argparse.Namespace) -> int:
    from services import client

    try:
        with open(args.file, "rb") as handle:
            content = handle.read()
    except OSError as error:
        print(f"stt transcribe: {error}", file=sys.stderr)
        return 2
    try:
        response = client.recognize(
            args.target,
            content,
            language=args.language,
            words=args.words,
            phrases=tuple(args.phrase),
            timeout=args.timeout,
        )
    except client.RecognizeError as error:
        print(f"stt transcribe: {error.code}: {error.message}", file=sys.stderr)
        return 1
    print(client.to_json(response) if args.json else client.to_text(response, args.words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
