"""What a request hints at beyond its audio: the languages it may be in (language_code and
`alternative_language_codes`, to detect among) and its speech contexts, either candidate
phrases to score (no boost) or phrases to favour in free recognition (a boost)."""

from __future__ import annotations

import math

from stt.v1 import stt_pb2

from services.core import languages
from services.core.errors import InvalidConfig

MAX_PHRASES = 100
MAX_PHRASE_CHARS = 200
MAX_BOOST = 20.0  # Google's scale; a stronger boost is taken as this one
MAX_ALTERNATIVE_LANGUAGES = 3  # Google's limit


def language_choice(
    config: stt_pb2.RecognitionConfig, served: tuple[str, ...], service: str
) -> tuple[str | None, tuple[str, ...]]:
    """The served language asked for (None: detect it), and the languages to detect among
    (none: all served)."""
    candidates = candidates_of(config, served, service)
    if len(candidates) == 1:  # the alternatives are the same language
        return candidates[0], ()
    if candidates:
        return None, candidates
    return languages.resolve(config.language_code, served, service), ()


def candidates_of(
    config: stt_pb2.RecognitionConfig, served: tuple[str, ...], service: str
) -> tuple[str, ...]:
    """The served languages to detect among: language_code and the alternatives, when
    alternatives are given (each must be served)."""
    alternatives = config.alternative_language_codes
    if not alternatives:
        return ()
    if len(alternatives) > MAX_ALTERNATIVE_LANGUAGES:
        raise InvalidConfig(
            f"config.alternative_language_codes holds {len(alternatives)} codes; at most "
            f"{MAX_ALTERNATIVE_LANGUAGES}"
        )
    if not config.language_code.strip():
        raise InvalidConfig(
            "config.alternative_language_codes needs language_code, the most likely language"
        )
    codes = (config.language_code, *alternatives)
    return tuple(dict.fromkeys(languages.resolve(code, served, service) for code in codes))


def candidate_code(language: str, config: stt_pb2.RecognitionConfig) -> str:
    """The code a client gave (language_code or an alternative) for a detected primary
    language; the language itself when it gave none that matches."""
    for code in (config.language_code, *config.alternative_language_codes):
        if languages.primary_subtag(code) == language:
            return code
    return language


def scored_phrases(config: stt_pb2.RecognitionConfig) -> tuple[str, ...]:
    """The candidate phrases to score (contexts without a boost)."""
    phrases = tuple(p.strip() for c in config.speech_contexts if not c.boost for p in c.phrases)
    check_phrases(phrases, "are scored")
    return phrases


def boosted_phrases(config: stt_pb2.RecognitionConfig) -> tuple[tuple[str, ...], float]:
    """The phrases to favour (contexts with a boost) and the strongest boost given."""
    boosts = [c.boost for c in config.speech_contexts if c.boost]
    for boost in boosts:
        if not (math.isfinite(boost) and boost > 0):
            raise InvalidConfig(f"config.speech_contexts boost must be 0 or more, got {boost}")
    if boosts and any(not c.boost and c.phrases for c in config.speech_contexts):
        raise InvalidConfig(
            "config.speech_contexts mixes candidate phrases (boost 0) with boosted ones: "
            "give every context a boost, or none"
        )
    phrases = tuple(p.strip() for c in config.speech_contexts if c.boost for p in c.phrases)
    check_phrases(phrases, "are boosted")
    return phrases, min(max(boosts, default=0.0), MAX_BOOST)


def check_phrases(phrases: tuple[str, ...], verb: str) -> None:
    if len(phrases) > MAX_PHRASES:
        raise InvalidConfig(
            f"config.speech_contexts holds {len(phrases)} phrases; at most {MAX_PHRASES} {verb}"
        )
    for index, phrase in enumerate(phrases):
        if not phrase or len(phrase) > MAX_PHRASE_CHARS:
            raise InvalidConfig(
                f"speech_contexts phrase {index} must be 1 to {MAX_PHRASE_CHARS} characters, "
                f"got {len(phrase)}"
            )
