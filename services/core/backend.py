"""The contract between the serving core and a model: plain data in, plain data out.

A backend knows nothing of gRPC or protobuf. The core calls `attach` and `load` and `warm_up`
once, then `transcribe` from worker threads: at most `max_concurrency` at a time, or, for a
backend that `batches`, up to `max_batch_size` pieces of each of them, whose model passes meet
in the batcher.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from services.core.batching import Batcher
from services.core.cancellation import Cancellation
from services.core.errors import InvalidConfig, Unimplemented

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class DecodeOptions:
    """What a request asks of the model. Zero or None means the backend's default."""

    language: str | None = None
    beam_size: int = 0
    temperature: float | None = None
    initial_prompt: str = ""
    # Words heard just before this audio (a stream's earlier utterances), for a backend that
    # takes a prompt when `initial_prompt` is empty; unlike the client's own prompt, the
    # backend may shorten it (whisper_en does, so that streams' decodes batch together).
    context: str = ""
    word_timestamps: bool = False
    # Text the transcript must start with (streaming: words already shown as stable).
    # Backends that decode frame by frame (CTC) ignore it.
    prefix: str = ""
    # Expected phrases: a backend that scores them returns them ranked (see `Backend.check`).
    phrases: tuple[str, ...] = ()
    # English text for speech in any language, for a backend that `translates`.
    translate_to_english: bool = False
    # Latency first (streaming): a backend with a fixed input window (Whisper's 30 s) may fit
    # it to the audio given. Backends without one ignore it.
    short_window: bool = False
    # Phrases to favour in free recognition (phrase boosting), with the boost (0 to 20,
    # Google's scale); a backend that cannot boost refuses them (see `Backend.check`).
    boosted: tuple[str, ...] = ()
    boost: float = 0.0
    # Served languages to detect the language among (none: among all it serves).
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Alternative:
    """Another reading of a segment, ranked below the segment's own text."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Segment:
    """One portion of speech; times in seconds from the start of the audio given."""

    text: str
    start: float
    end: float
    confidence: float
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()  # most likely first

    def shifted(self, offset: float) -> Segment:
        alternatives = tuple(
            Alternative(a.text, a.confidence, _shift(a.words, offset)) for a in self.alternatives
        )
        return Segment(
            self.text,
            self.start + offset,
            self.end + offset,
            self.confidence,
            _shift(self.words, offset),
            alternatives,
        )


def _shift(words: tuple[Word, ...], offset: float) -> tuple[Word, ...]:
    return tuple(Word(w.text, w.start + offset, w.end + offset, w.confidence) for w in words)


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str
    language_probability: float = 0.0


@dataclass(frozen=True)
class BackendInfo:
    model: str
    device: str
    precision: str
    languages: tuple[str, ...]


class Backend(abc.ABC):
    """A speech model behind the core. Subclasses implement the abstract members; the rest
    (`check`, `detect_language`, `warm_up`, `max_chunk_seconds`) have defaults."""

    #: Longest audio, in seconds, one `transcribe` call handles well; the core cuts longer
    #: audio at pauses into pieces no longer than this.
    max_chunk_seconds: float = 30.0
    #: Whether the model can translate speech into English text (`DecodeOptions`).
    translates: bool = False
    #: Whether the model favours boosted phrases (`DecodeOptions.boosted`).
    boosts: bool = False
    #: Whether concurrent `transcribe` calls share batched model passes, through the batcher
    #: given to `attach`: the core then sends a request's pieces at once, not one by one.
    batches: bool = False
    #: The service's batcher, once `attach` gave it.
    batcher: Batcher | None = None

    def planned_device(self) -> str:
        """Where the model will run ("cpu" or "cuda"), known before `load`: the batch size
        that `max_batch_size` 0 means depends on it."""
        return "cpu"

    def attach(self, batcher: Batcher) -> None:
        """Takes the service's batcher, before `load`; a backend that `batches` registers its
        batched passes with it and routes its model calls through `batcher.run`."""
        self.batcher = batcher

    @abc.abstractmethod
    def load(self) -> None:
        """Loads the model; called once, before any other call, off the event loop."""

    @property
    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Model id, device, precision and languages; valid after `load`."""

    def check(self, options: DecodeOptions) -> None:
        """Refuses, with `InvalidConfig`, options this backend cannot honour.

        Called before the request waits for a slot, so a request that can only fail costs
        nothing. By default phrases are refused: scoring them needs a backend that can.
        """
        if options.phrases:
            raise InvalidConfig(
                "this service does not score speech_contexts phrases; leave them out"
            )
        if options.boosted and not self.boosts:
            raise InvalidConfig(
                "speech_contexts boost: this service does not boost phrases; leave boost at 0"
            )
        if options.translate_to_english and not self.translates:
            raise InvalidConfig(
                "config.decoding.translate_to_english: this service does not translate"
            )

    @abc.abstractmethod
    def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, cancellation: Cancellation
    ) -> Transcript:
        """Transcribes 16 kHz mono float32 `audio`, calling `cancellation.check()` between units."""

    def detect_language(
        self, audio: np.ndarray, cancellation: Cancellation, candidates: tuple[str, ...] = ()
    ) -> tuple[str, float]:
        """The most likely served language of 16 kHz mono `audio` (of `candidates` when
        given) and its probability.

        Optional: a backend for one language has nothing to detect, and says so.
        """
        raise Unimplemented("this service does not detect languages")

    def warm_up(self) -> None:
        """Runs one inference so the first real request does not pay for lazy initialisation."""
        languages = self.info.languages
        language = "en" if "en" in languages else languages[0]  # never pay for detection here
        rng = np.random.default_rng(0)
        noise = (0.01 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
        # One fixed temperature: noise would otherwise walk the whole fallback schedule.
        self.transcribe(noise, DecodeOptions(language=language, temperature=0.0), Cancellation())
