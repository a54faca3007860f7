"""What the Google and Riva front ends share: refusing a field with a message that names it
(diarization on a stream among them), speaker tags, speech contexts, and the `model` field,
which either leaves a request to language routing or pins it to one backend by the router's
name for it."""

from __future__ import annotations

from collections.abc import Iterable

from stt.v1 import stt_pb2

from services.core.errors import InvalidConfig


def unsupported(field: str, why: str) -> InvalidConfig:
    return InvalidConfig(f"{field} is not supported: {why}")


def refuse_streamed_speakers(enabled: bool, field: str) -> None:
    """Speakers are told apart over the whole audio, which a stream never has."""
    if enabled:
        raise unsupported(
            f"{field}.diarization_config.enable_speaker_diarization",
            "speakers are told apart over the whole audio, so only in the offline calls "
            "(Google's recognize and long_running_recognize, Riva's offline_recognize)",
        )


def speaker_tag(label: str) -> int:
    """A speaker label as the integer tag Google's (deprecated) and Riva's words carry, when
    the label is a number; else 0, the tag of no speaker."""
    return int(label) if label.isdecimal() and len(label) <= 9 else 0


def copy_phrases(contexts: Iterable, into: stt_pb2.RecognitionConfig, field: str) -> None:
    """Speech contexts as stt.v1's: with a boost, phrases that bias recognition (Google's
    scale, 0 to 20: a Riva score above it counts as 20); without, candidate phrases, scored
    by the services that score phrases. Google's class tokens (`$TIME`, `$OOV_CLASS_DIGIT`)
    name classes of Google's own, not words: they are left out."""
    for index, context in enumerate(contexts):
        if context.boost < 0 or context.boost != context.boost:
            raise unsupported(f"{field}[{index}].boost {context.boost}", "give 0 or more")
        phrases = [p for p in context.phrases if not p.strip().startswith("$")]
        if phrases:
            into.speech_contexts.add(phrases=phrases, boost=context.boost)


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
