"""What the Google and Riva front ends share: refusing a field with a message that names it,
expected phrases, and the `model` field, which either leaves a request to language routing or
pins it to one backend by the router's name for it."""

from __future__ import annotations

from collections.abc import Iterable

from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig


def unsupported(field: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"{field} is not supported: {why}")


def copy_phrases(contexts: Iterable, into: stt_pb2.RecognitionConfig, field: str) -> None:
    """Speech contexts as candidate phrases (scored by the services that score phrases). A
    boost is a weight for biasing free recognition, which this API does not do: refused."""
    for index, context in enumerate(contexts):
        if context.boost:
            raise unsupported(
                f"{field}[{index}].boost",
                "phrases are scored as candidate transcripts, not boosted; leave boost at 0",
            )
        into.speech_contexts.add(phrases=list(context.phrases))


def pinned_backend(
    model: str, backends: list[str], field: str, routed: Iterable[str] = ("",)
) -> str | None:
    """None when `model` asks for language routing (one of `routed`), else the backend it
    names; any other name is INVALID_ARGUMENT listing the names accepted."""
    if model in routed:
        return None
    if model in backends:
        return model
    accepted = ", ".join(repr(name) for name in [*routed, *backends])
    raise InvalidConfig(f"{field} {model!r} is not served; use one of: {accepted}")
