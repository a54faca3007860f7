"""faster-whisper used directly in process: what a user of the library would write."""

from __future__ import annotations

import io

from faster_whisper import WhisperModel, decode_audio

from bench.config import LANGUAGE, library_vad_parameters
from services.whisper_en.settings import WhisperSettings


class Library:
    """A WhisperModel opened like the service's backend opens it, with the same options."""

    def __init__(self, settings: WhisperSettings, num_workers: int = 1):
        self.model = WhisperModel(
            settings.model,
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            num_workers=num_workers,
        )
        self._options = {
            "language": LANGUAGE,
            "beam_size": settings.beam_size,
            "condition_on_previous_text": settings.condition_on_previous_text,
            "vad_filter": True,
            "vad_parameters": library_vad_parameters(settings),
        }

    def transcribe(self, content: bytes) -> str:
        """Decodes the encoded bytes (with the library's own gc.collect) and transcribes them."""
        audio = decode_audio(io.BytesIO(content))
        segments, _ = self.model.transcribe(audio, **self._options)
        # `segments` is a generator: consuming it is what runs the decoder.
        return " ".join(segment.text.strip() for segment in segments)
