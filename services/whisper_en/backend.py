"""The faster-whisper backend: Whisper on CTranslate2, float16 on GPU and int8 on CPU."""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import replace
from pathlib import Path

import ctranslate2
import numpy as np

from services.core.backend import (
    SAMPLE_RATE,
    Backend,
    BackendInfo,
    DecodeOptions,
    Segment,
    Transcript,
    Word,
)
from services.core.batching import BatchLimits
from services.core.cancellation import Cancellation
from services.whisper_en import bundled, gpu_memory, window
from services.whisper_en.settings import WhisperSettings
from services.whisper_en.window import FittedWhisperModel

log = logging.getLogger("stt.whisper_en")
# Whisper's own fallback schedule when a request sets no temperature.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
START_TOKENS = 4  # start of transcript, language, task, no timestamps: ahead of any prompt
# The prompt of the passes the GPU memory bound measures.
PASS_PROMPT = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>")


class WhisperBackend(Backend):
    max_chunk_seconds = 30.0  # Whisper's window: a piece this long decodes in one pass
    translates = True  # Whisper's "translate" task: English text for any language it knows
    boosts = True  # boosted phrases lead the prompt (see `boosted_prompt`)
    batches = True  # CTranslate2 runs a batch of windows in one pass (batched.py)

    def __init__(self, settings: WhisperSettings):
        self._settings = settings
        self._model: FittedWhisperModel | None = None
        self._info: BackendInfo | None = None
        self._fits = True  # False once a fitted window failed to run on this model or device
        self._card: gpu_memory.CardMemory | None = None  # on CUDA: the GPU memory bound's
        self._before_load = 0
        self._replicas = 1
        self._path = ""

    def planned_device(self) -> str:
        return self._settings.device if self._settings.device != "auto" else _best_device()

    def load(self) -> None:
        s = self._settings
        path = bundled.resolve(s.model, s.model_cache_dir)
        device = self.planned_device()
        compute_type = s.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self._card = gpu_memory.CardMemory() if device == "cuda" and self.batcher else None
        self._before_load = self._card.used() if self._card else 0
        self._path = path
        try:
            self._model = self._open(path, device, compute_type)
        except (ValueError, RuntimeError) as error:
            if device != "cuda" or compute_type == "float32":
                raise
            log.warning(
                "float16 load failed; falling back to float32",
                extra={"error": str(error), "compute_type": compute_type},
            )
            compute_type = "float32"
            self._model = self._open(path, device, compute_type)
        known = tuple(self._model.supported_languages)
        served = tuple(code for code in s.languages if code in known) if s.languages else known
        self._info = BackendInfo(s.model, device, self._model.model.compute_type, served)

    def warm_up(self) -> None:
        super().warm_up()
        if self._card is not None:
            self._bound_gpu_memory()

    def _bound_gpu_memory(self) -> None:
        """Sizes batches to `gpu_memory_fraction` from what the model and its passes take;
        with fewer batches at once than replicas loaded, loads again with fewer."""
        s, limits = self._settings, self.batcher.limits
        after_load = self._card.used()
        tokenizer = self._model.hf_tokenizer
        prompt = [tokenizer.token_to_id(t) for t in PASS_PROMPT]
        found = gpu_memory.size_batches(
            self._card,
            self._before_load,
            after_load,
            self._replicas,
            lambda n: self._model.model.pass_over(n, prompt, s.beam_size, self._model.max_length),
            s.gpu_memory_fraction,
            limits.max_batch_size,
        )
        if found.runners < self._replicas:
            info = self.info
            self._model = None
            self._model = self._open(self._path, info.device, info.precision, found.runners)
        self.batcher.resize(BatchLimits(found.max_batch_size, limits.window_s, found.runners))

    def _open(
        self, path: str, device: str, compute_type: str, replicas: int | None = None
    ) -> FittedWhisperModel:
        # One model replica per batch that may run at once (each its own CTranslate2 worker).
        limits = self.batcher.limits if self.batcher else None
        self._replicas = replicas or (limits.runners if limits else self._settings.max_concurrency)
        threads = self._settings.cpu_threads
        if device == "cpu":
            self._replicas, threads = cpu_sizing(self._replicas, threads, available_cores())
        return FittedWhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=self._replicas,
            download_root=str(self._settings.model_cache_dir / "hub"),
            batcher=self.batcher,
        )

    @property
    def info(self) -> BackendInfo:
        if self._info is None:
            raise RuntimeError("the model is not loaded")
        return self._info

    def _require_model(self):
        """The loaded model; a call before `load` is a bug, said as one (not an assert, which
        optimised Python drops)."""
        if self._model is None:
            raise RuntimeError("load() first")
        return self._model

    def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, cancellation: Cancellation
    ) -> Transcript:
        self._require_model()
        options = boosted_prompt(options)
        frames = self._fitted_frames(audio, options) if options.short_window else None
        if frames is not None:
            found = self._fitted(audio, options, frames, cancellation)
            if found is None and options.prefix and self._fits:
                # A forced prefix can start a loop that the same audio without it does not.
                options = replace(options, prefix="")
                found = self._fitted(audio, options, frames, cancellation)
            if found is not None:
                return found
        return _transcript(*self._decode(audio, options, cancellation))

    def _fitted_frames(self, audio: np.ndarray, options: DecodeOptions) -> int | None:
        """The encoder frames of a window fitted to the audio; None where fitted windows
        failed to run, where the audio is too long for one to help, or where the token
        budget would pass Whisper's context (faster-whisper refuses it)."""
        frames = window.fitted_frames(len(audio))
        if not self._fits or frames is None:
            return None
        prompt, prefix = self._prompt_tokens(options)
        budget = window.token_budget(len(audio) / SAMPLE_RATE)
        return frames if prompt + prefix + START_TOKENS + budget <= self._model.max_length else None

    def _fitted(
        self, audio: np.ndarray, options: DecodeOptions, frames: int, cancellation: Cancellation
    ) -> Transcript | None:
        """A decode on the first `frames` of the window; None where it looped or failed."""
        seconds = len(audio) / SAMPLE_RATE
        prompt, prefix = self._prompt_tokens(options)
        in_prompt = (prompt + 1 if prompt else 0) + START_TOKENS + prefix
        budget = window.new_tokens(in_prompt, window.token_budget(seconds), self._model.max_length)
        try:
            with self._model.fitted(frames):
                found, info = self._decode(
                    audio, options, cancellation, without_timestamps=True, max_new_tokens=budget
                )
        except (RuntimeError, ValueError) as error:  # CTranslate2's refusals of a shape
            log.warning(
                "a fitted window failed; decoding full windows from now on",
                extra={"error": str(error)},
            )
            self._fits = False
            return None
        if window.looped(found, seconds, budget + prefix):
            log.info("a fitted window looped", extra={"s": seconds, "prefix": bool(prefix)})
            return None
        return _transcript(found, info)

    def _decode(self, audio: np.ndarray, options: DecodeOptions, cancellation, **fitted):
        """faster-whisper's segments (read one by one, checking for cancellation) and info."""
        temperature = TEMPERATURES if options.temperature is None else options.temperature
        segments, info = self._model.transcribe(
            audio,
            language=options.language,
            beam_size=options.beam_size or self._settings.beam_size,
            # A fitted window that loops is decoded again on the full one, not resampled.
            temperature=0.0 if fitted and options.temperature is None else temperature,
            initial_prompt=self._prompt(options),
            task="translate" if options.translate_to_english else "transcribe",
            prefix=options.prefix or None,
            word_timestamps=options.word_timestamps,
            condition_on_previous_text=self._settings.condition_on_previous_text,
            vad_filter=False,  # the core already cut the audio at pauses
            **fitted,
        )
        if fitted:
            # Without timestamps the first segment holds all the window's text; the generator
            # would go on to decode again the audio after the last word it placed.
            segments = itertools.islice(segments, 1)
        found = []
        for segment in segments:  # a generator: each step decodes more audio
            cancellation.check()
            found.append(segment)
        return found, info

    def _prompt(self, options: DecodeOptions) -> str | list[int] | None:
        """The client's prompt as it is, or else the tail of the stream's context (tokens)."""
        if options.initial_prompt:
            return options.initial_prompt
        if not options.context.strip():
            return None
        tokens = self._model.hf_tokenizer.encode(" " + options.context.strip()).ids
        return window.context_tokens(tokens) or None

    def _prompt_tokens(self, options: DecodeOptions) -> tuple[int, int]:
        """Tokens of the prompt (as faster-whisper cuts it) and of the prefix."""
        encode = self._model.hf_tokenizer.encode
        prompt = self._prompt(options)
        if isinstance(prompt, str):
            prompt = encode(" " + prompt.strip()).ids
        prefix = len(encode(" " + options.prefix.strip()).ids) if options.prefix else 0
        return min(len(prompt or ()), self._model.max_length // 2 - 1), prefix

    def detect_language(
        self, audio: np.ndarray, cancellation: Cancellation, candidates: tuple[str, ...] = ()
    ) -> tuple[str, float]:
        """Whisper's language-id pass: one encoder window (30 s) and one decoder step."""
        model = self._require_model()
        cancellation.check()
        _, _, ranked = model.detect_language(audio)
        return _best_of(ranked, set(candidates or self.info.languages))


def _best_of(ranked, allowed: set[str]) -> tuple[str, float]:
    """The most likely allowed language (ranked most likely first) and its probability."""
    return next(((code, p) for code, p in ranked if code in allowed), ("", 0.0))


def boosted_prompt(options: DecodeOptions) -> DecodeOptions:
    """Boosted phrases as the start of the prompt, the client's own prompt after them.

    Whisper takes no weights: a boost only says which phrases to expect. Written as a short
    list ("Zorbulon, Xarelvotide."), they make the decoder spell those words where the
    audio has them and leave the rest alone; Google's class tokens (`$TIME`) are skipped."""
    phrases = [p for p in options.boosted if not p.startswith("$")]
    if not phrases:
        return options
    prompt = ", ".join(phrases) + "."
    if options.initial_prompt:
        prompt = f"{prompt} {options.initial_prompt}"
    return replace(options, initial_prompt=prompt, boosted=())


def _transcript(segments: list, info) -> Transcript:
    return Transcript(
        tuple(_segment(s) for s in segments), info.language, info.language_probability
    )


def _segment(segment) -> Segment:
    words = tuple(
        Word(w.word, w.start, w.end, _clamp(w.probability)) for w in (segment.words or ())
    )
    return Segment(
        segment.text, segment.start, segment.end, _clamp(math.exp(segment.avg_logprob)), words
    )


def _clamp(p: float) -> float:
    return min(1.0, max(0.0, float(p)))


def _best_device() -> str:
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: a container's CPU limit


def available_cores(cpu_max: Path = CPU_MAX) -> int:
    """The cores this process may use: those it may run on (its affinity), and no more than a
    container's CPU limit (a pod limited to 2 CPUs on a 64-core node gets 2)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = cpu_max.read_text().split()
    except (OSError, ValueError):  # no cgroup v2 limit file here: the affinity alone
        return cores or 1
    if quota == "max":
        return cores or 1
    return max(1, min(cores or 1, math.ceil(int(quota) / int(period))))


def cpu_sizing(replicas: int, cpu_threads: int, cores: int) -> tuple[int, int]:
    """Model replicas and threads per replica on a CPU, their threads together within the
    cores. CTranslate2's OpenMP runtime (GNU libgomp) stops spinning between parallel
    regions once it holds more threads than there are cores; every region then waits on a
    sleeping thread's wake-up, and two threads decode no faster than one (Whisper base, 2
    cores: a single request took 1.19 s with 4 threads held against 0.63 s with 2; see
    docs/benchmarks.md). `cpu_threads` 0 shares the cores out among the replicas; a given
    `cpu_threads` keeps as many replicas as fit beside it."""
    if cpu_threads:
        return max(1, min(replicas, cores // cpu_threads)), cpu_threads
    replicas = max(1, min(replicas, cores))
    return replicas, max(1, cores // replicas)
