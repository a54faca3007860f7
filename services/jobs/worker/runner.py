"""Runs one claimed job: reads and decodes its audio, has its speakers told apart when asked
(first, so that audio the diarization service cannot take fails the job before any chunk is
transcribed), plans its chunks (once, stored), sends each missing chunk to Recognize through
the router, keeps each chunk's result as it comes, labels the words with their speakers, and
returns the job's response.

Every chunk's result is stored before the next chunk is sent, with the job's progress; a
worker that takes the job over after this one died starts at the first missing chunk. A job
that asks for each channel on its own has a plan per channel, and its results tagged with
their channel, in time order.
"""

from __future__ import annotations

import time

from stt.v1 import stt_pb2

from services.core import audio, channel_audio, languages
from services.core.backend import SAMPLE_RATE
from services.core.cancellation import Cancellation
from services.core.convert import audio_spec, duration
from services.core.errors import Cancelled, InvalidAudio, SttError
from services.core.speakers import label_results
from services.core.text_form import make_words_bare
from services.core.vad import Span, VoiceActivityDetector
from services.jobs.buckets import is_object_uri
from services.jobs.store import Claim, Store, usage_day
from services.jobs.uri_policy import UriPolicy
from services.jobs.worker import chunks
from services.jobs.worker.calls import RouterCalls
from services.jobs.worker.fetch import read_uri
from services.jobs.worker.object_store import ObjectStore
from services.jobs.worker.settings import WorkerSettings

# VAD runs over blocks of this length, so a cancel is noticed between blocks of a long job.
VAD_BLOCK_S = 300
REQUEST_ID_CHARS = 100  # leaves room for the chunk number within the 128 a request id may have
LOST = "the job was taken over, cancelled or deleted"


class JobRunner:
    def __init__(
        self,
        store: Store,
        claim: Claim,
        settings: WorkerSettings,
        uris: UriPolicy,
        vad: VoiceActivityDetector,
        calls: RouterCalls,
        stop: Cancellation,
        objects: ObjectStore | None = None,
    ):
        self._store = store
        self._job = claim.job
        self._token = claim.token
        self._settings = settings
        self._uris = uris
        self._vad = vad
        self._calls = calls
        self._stop = stop
        self._objects = objects or ObjectStore(settings.buckets.policy())
        self.audio_seconds = 0.0

    def run(self) -> stt_pb2.LongRunningRecognizeResponse:
        request = stt_pb2.LongRunningRecognizeRequest.FromString(self._job.request)
        config = request.config
        content = self._content(request)
        channels = self._decode(content, config)
        self.audio_seconds = len(channels[0]) / SAMPLE_RATE
        self._stop.check()
        speakers = None
        if config.diarization_config.enable_speaker_diarization:
            speakers = self._diarize(content, config)
        plan = self._plan(channels, config)
        done = {
            index: stt_pb2.RecognizeResponse.FromString(result)
            for index, result in self._store.chunks(self._job.name).items()
        }
        language = self._first_language(config, done)
        for index, chunk in enumerate(plan):
            if index in done:
                continue
            done[index] = self._recognize(channels[chunk.channel], chunk, index, config, language)
            # The first chunk's language, when detected, is the whole job's.
            language = language or done[index].language_code
            progress = chunks.progress(plan, set(done))
            result = done[index].SerializeToString()
            if not self._store.save_chunk(
                self._job.name, self._token, index, result, progress, language
            ):
                raise Cancelled(LOST)
        results = self._results(plan, done, config)
        if speakers is not None:
            results = label_results(results, speakers.turns)
            if config.bare_words:
                make_words_bare(results)
        return self._response(config, done, results, speakers)

    def _decode(self, content: bytes, config: stt_pb2.RecognitionConfig) -> list:
        """The job's 16 kHz samples: one array, or one a channel when each is recognised on
        its own."""
        bounds = self._settings.audio
        limits = audio.AudioLimits(bounds.max_audio_bytes, bounds.max_audio_seconds)
        spec = audio_spec(config)
        if spec.separate_channels:
            return list(channel_audio.decode_channels(content, spec, limits).channels)
        return [audio.decode(content, spec, limits).samples]

    @staticmethod
    def _first_language(config: stt_pb2.RecognitionConfig, done) -> str:
        """The language every chunk is sent with: the job's, or the first chunk's when it was
        detected (among alternatives too); "" until the first chunk tells."""
        given = "" if config.alternative_language_codes else config.language_code
        return given or (done[0].language_code if 0 in done else "")

    @staticmethod
    def _results(plan, done, config: stt_pb2.RecognitionConfig) -> list:
        results = [r for index in range(len(plan)) for r in done[index].results]
        if not config.enable_separate_recognition_per_channel:
            return results
        for index, chunk in enumerate(plan):
            for result in done[index].results:
                result.channel_tag = chunk.channel + 1
        return sorted(results, key=lambda r: (r.result_start_offset.ToNanoseconds(), r.channel_tag))

    def _content(self, request: stt_pb2.LongRunningRecognizeRequest) -> bytes:
        if request.audio.uri:
            bounds = self._settings.audio
            if is_object_uri(request.audio.uri):
                return self._objects.read(
                    request.audio.uri, bounds.max_audio_bytes, bounds.fetch_timeout_s
                )
            # Checked again here, against the addresses the fetch connects to, and its redirects.
            return read_uri(
                request.audio.uri, bounds.max_audio_bytes, bounds.fetch_timeout_s, self._uris
            )
        content = self._store.audio(self._job.name)
        if content is None:
            raise SttError("the job's uploaded audio is missing")
        return content

    def _diarize(self, content: bytes, config: stt_pb2.RecognitionConfig):
        """The job's speaker turns, from the whole audio at once (speaker identities must hold
        across chunks), as the client sent it (compressed, usually)."""
        limit = self._calls.diarization_limit(self._stop)
        if limit and len(content) > limit:
            raise InvalidAudio(
                f"the job's audio is {len(content)} bytes, over the {limit} bytes the router "
                "takes in one message (ROUTER_MAX_MESSAGE_BYTES), so its speakers cannot be "
                "told apart; WORKER_MAX_AUDIO_BYTES is higher"
            )
        request = stt_pb2.DiarizeRequest(
            config=config, audio=stt_pb2.RecognitionAudio(content=content)
        )
        return self._calls.diarize(request, self._request_id("diarize"), self._stop)

    def _plan(self, channels: list, config: stt_pb2.RecognitionConfig) -> list[chunks.Chunk]:
        if self._job.plan is not None:
            return chunks.loads(self._job.plan)
        vad_off = config.HasField("enable_voice_activity_detection") and not (
            config.enable_voice_activity_detection
        )
        limit = self._settings.audio.chunk_seconds
        plan = []
        for channel, samples in enumerate(channels):
            if vad_off:
                plan += chunks.fixed(len(samples), limit, channel)
            else:
                plan += chunks.plan(self._speech_spans(samples, limit), limit, channel)
        if not self._store.set_plan(
            self._job.name, self._token, chunks.dumps(plan), self.audio_seconds
        ):
            raise Cancelled(LOST)
        if self._job.audio_seconds is None:  # audio by uri: its length is known only now
            day = usage_day(self._job.created)
            self._store.record_usage(self._job.tenant, day, self.audio_seconds)
        return plan

    def _speech_spans(self, samples, max_span_s: float) -> list[Span]:
        """VAD spans over the whole audio, block by block; spans that meet at a block's edge
        are joined, so speech across it is never cut there."""
        block = VAD_BLOCK_S * SAMPLE_RATE
        spans: list[Span] = []
        for offset in range(0, len(samples), block):
            self._stop.check()
            for span in self._vad.speech_spans(samples[offset : offset + block], max_span_s):
                moved = Span(span.start + offset, span.end + offset)
                if spans and spans[-1].end >= offset and moved.start <= offset:
                    spans[-1] = Span(spans[-1].start, moved.end)
                else:
                    spans.append(moved)
        return spans

    def _recognize(
        self,
        samples,
        chunk: chunks.Chunk,
        index: int,
        config: stt_pb2.RecognitionConfig,
        language: str,
    ) -> stt_pb2.RecognizeResponse:
        chunk_config = stt_pb2.RecognitionConfig()
        chunk_config.CopyFrom(config)
        chunk_config.ClearField("diarization_config")  # the whole job is diarized at once
        chunk_config.encoding = stt_pb2.RecognitionConfig.LINEAR16
        chunk_config.sample_rate_hertz = SAMPLE_RATE
        chunk_config.audio_channel_count = 1
        chunk_config.enable_separate_recognition_per_channel = False  # a chunk is one channel
        if language or not config.alternative_language_codes:
            chunk_config.language_code = language
            chunk_config.ClearField("alternative_language_codes")
        diarizing = config.diarization_config.enable_speaker_diarization
        if diarizing:  # speakers are matched to words by their times
            chunk_config.enable_word_time_offsets = True
            chunk_config.bare_words = False  # results split by speaker are joined from them
        request = stt_pb2.RecognizeRequest(
            config=chunk_config, audio=stt_pb2.RecognitionAudio(content=chunk.pcm(samples))
        )
        response = self._calls.recognize(request, self._request_id(str(index)), self._stop)
        chunks.shift(response, chunk, chunk_config.enable_word_time_offsets)
        return response

    def _response(
        self,
        config: stt_pb2.RecognitionConfig,
        done: dict[int, stt_pb2.RecognizeResponse],
        results: list[stt_pb2.SpeechRecognitionResult],
        speakers: stt_pb2.DiarizeResponse | None,
    ) -> stt_pb2.LongRunningRecognizeResponse:
        first = done.get(0, stt_pb2.RecognizeResponse())
        detected = not config.language_code.strip()
        started = self._job.started or self._job.created
        return stt_pb2.LongRunningRecognizeResponse(
            results=results,
            total_billed_time=duration(self.audio_seconds),
            request_id=self._job.request_id,
            language_code=first.language_code or languages.primary_subtag(config.language_code),
            language_probability=first.language_probability if detected else 0.0,
            audio_duration=duration(self.audio_seconds),
            model=first.model,
            service=first.service,
            processing_time=duration(time.time() - started),
            speaker_count=speakers.speaker_count if speakers is not None else 0,
        )

    def _request_id(self, part: str) -> str:
        return f"{self._job.request_id[:REQUEST_ID_CHARS]}.{part}"
