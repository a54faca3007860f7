"""The CTC backend: features once per piece, the model over overlapping windows, the merged
frames decoded greedily into timed words, or scored against expected phrases."""

from __future__ import annotations

import math

import numpy as np

from services.core.backend import SAMPLE_RATE, Backend, BackendInfo, DecodeOptions, Transcript
from services.core.batching import Batcher
from services.core.cancellation import Cancellation
from services.core.errors import InvalidConfig
from services.ctc import decoding, scoring, windows
from services.ctc import device as device_mod
from services.ctc.features import FeatureReader
from services.ctc.hotwords import HotwordDecoder
from services.ctc.model import CtcModel
from services.ctc.settings import CtcSettings
from services.ctc.text import TextRules
from services.ctc.vocabulary import Vocabulary


class CtcBackend(Backend):
    # Windows with stride take audio of any length, so the core's own limit decides.
    max_chunk_seconds = math.inf
    #: How this language's text is tidied and compared; services override it.
    text_rules = TextRules()
    #: The model wrapper; a seam for tests that need float16 to fail.
    model_class = CtcModel
    #: Windows of concurrent requests (and of one long piece) run as one padded batch.
    batches = True

    def __init__(self, settings: CtcSettings):
        self._settings = settings
        self._model = self.model_class(settings)
        self._reader: FeatureReader | None = None
        self._vocab: Vocabulary | None = None
        self._hotwords: HotwordDecoder | None = None
        self._window = self._stride = 0

    def planned_device(self) -> str:
        return device_mod.pick_device(self._settings.device)

    def attach(self, batcher: Batcher) -> None:
        super().attach(batcher)
        batcher.register("forward", self._model.log_probs_batch)

    def load(self) -> None:
        self._model.load()
        processor = self._model.processor
        self._reader = FeatureReader(processor.feature_extractor, self._model.module)
        geometry = self._reader.geometry
        seconds = device_mod.window_seconds(self._settings, self._model.device)
        self._window = geometry.units(seconds)
        self._stride = geometry.units(self._settings.stride_seconds)
        if self._window <= 2 * self._stride:
            raise ValueError(
                f"a {seconds} s window leaves nothing between its two "
                f"{self._settings.stride_seconds} s strides: lower stride_seconds"
            )
        outputs = self._model.module.config.vocab_size
        self._vocab = Vocabulary.from_tokenizer(processor.tokenizer, outputs)
        self._hotwords = _hotword_decoder(self._vocab, self.text_rules)

    @property
    def info(self) -> BackendInfo:
        if self._vocab is None:
            raise RuntimeError("the model is not loaded")
        return BackendInfo(
            self._settings.model,
            self._model.device,
            self._model.precision,
            (self._settings.language,),
        )

    @property
    def window_seconds(self) -> float:
        """Length of the windows long audio is cut into (valid after `load`)."""
        return self._window * self._reader.geometry.samples_per_unit / SAMPLE_RATE

    def warm_up(self) -> None:
        super().warm_up()
        if self._model.compiled:
            # A second length makes torch.compile build its dynamic-shape graph now, rather
            # than stall the first request whose length differs from the warm-up's.
            noise = np.random.default_rng(1).standard_normal(int(self.window_seconds * SAMPLE_RATE))
            self.log_probs((0.01 * noise).astype(np.float32), Cancellation())

    def check(self, options: DecodeOptions) -> None:
        if options.beam_size > 1:
            raise InvalidConfig(
                f"config.decoding.beam_size {options.beam_size}: this service decodes "
                "greedily; leave it 0 or 1"
            )
        if options.temperature:
            raise InvalidConfig("config.decoding.temperature: this service does not sample")
        if options.initial_prompt:
            raise InvalidConfig("config.decoding.initial_prompt: a CTC model takes no prompt")
        if options.translate_to_english:
            raise InvalidConfig(
                "config.decoding.translate_to_english: this service does not translate"
            )
        for phrase in options.phrases:
            self._vocab.spell(phrase, self.text_rules)  # refuses what the model cannot write
        self._check_boosted(options)

    @property
    def boosts(self) -> bool:
        return self._hotwords is not None

    def _check_boosted(self, options: DecodeOptions) -> None:
        if not options.boosted:
            return
        if self._hotwords is None:
            raise InvalidConfig(
                "speech_contexts boost: this model's vocabulary is not one of single "
                "characters, which phrase boosting needs; leave boost at 0"
            )
        self._hotwords.hotwords(_boostable(options.boosted))  # refuses what it cannot write

    def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, cancellation: Cancellation
    ) -> Transcript:
        log_probs = self.log_probs(audio, cancellation)
        duration = len(audio) / SAMPLE_RATE
        frame_s = self._reader.geometry.frame_seconds
        heard = self._best_path(log_probs, options)
        timed = decoding.words(heard, log_probs, self._vocab, self.text_rules, frame_s, duration)
        if options.phrases:
            text = " ".join(w.word.text for w in timed)
            frames = scoring.Frames(log_probs, heard, text, frame_s, duration)
            temperature = self._settings.candidate_temperature
            segments = [
                scoring.rank(frames, options.phrases, self._vocab, self.text_rules, temperature)
            ]
        else:
            segments = decoding.segments(timed)
        language = options.language or self._settings.language
        return Transcript(tuple(segments), language, 1.0)

    def _best_path(self, log_probs: np.ndarray, options: DecodeOptions) -> list:
        """The greedy path, or with boosted phrases the hotword beam search's."""
        phrases = _boostable(options.boosted)
        if not phrases or self._hotwords is None:
            return decoding.best_path(log_probs, self._vocab.blank)
        return self._hotwords.decode(log_probs, phrases, options.boost)

    def log_probs(self, audio: np.ndarray, cancellation: Cancellation) -> np.ndarray:
        """Per-frame log-probabilities of the whole of `audio`, window by window."""
        units = self._reader(audio)
        per_frame = self._reader.geometry.units_per_frame
        plan = windows.plan(len(units), self._window, self._stride, per_frame)
        cancellation.check()
        parts = [units[window.start : window.end] for window in plan]
        if self.batcher is None:
            outputs = [self._model.log_probs(part) for part in parts]
        else:
            # Windows of any length share a batch where the model takes padding.
            padding = self._model.takes_padding
            keyed = [(part.shape[1:] if padding else part.shape, part) for part in parts]
            outputs = self.batcher.run_many("forward", keyed, cancellation)
        kept = [
            window.kept(frames, per_frame) for window, frames in zip(plan, outputs, strict=True)
        ]
        return np.concatenate(kept)


def _boostable(phrases: tuple[str, ...]) -> list[str]:
    """Phrases to boost, without Google's class tokens (`$TIME`), which name no words."""
    return [p for p in phrases if not p.startswith("$")]


def _hotword_decoder(vocab: Vocabulary, rules: TextRules) -> HotwordDecoder | None:
    """The hotword search for this vocabulary; None for one it cannot take (word pieces)."""
    try:
        return HotwordDecoder(vocab, rules)
    except ValueError:
        return None
