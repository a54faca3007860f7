"""A job's speaker diarization: the diarization service hears the whole job audio at once
(speaker identities must hold across chunks), and its turns label the job's words and split
its results where the speaker changes (`services.speakers.label_results`, as the router's
Recognize does)."""

from __future__ import annotations

import grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from services.jobs.calls import CHANNEL_OPTIONS, JobFailed, PatientCaller, Stop
from services.speakers import label_results


class Diarizer:
    def __init__(self, target: str, caller: PatientCaller):
        self._target = target
        self._caller = caller
        self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS) if target else None
        self._stub = stt_pb2_grpc.DiarizationStub(self._channel) if self._channel else None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def require(self) -> None:
        """Fails a job that asks for speakers on a worker without the service, before any of
        its audio is transcribed."""
        if self._stub is None:
            raise JobFailed(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the job asks for speaker diarization, but its worker has no diarization "
                "service (WORKER_DIARIZATION_TARGET)",
            )

    def label(
        self,
        content: bytes,
        config: stt_pb2.RecognitionConfig,
        results: list[stt_pb2.SpeechRecognitionResult],
        request_id: str,
        stop: Stop,
    ) -> tuple[list[stt_pb2.SpeechRecognitionResult], int]:
        """The results with each word's speaker, split where the speaker changes, and the
        number of speakers found."""
        self.require()
        # The audio as the client sent it (compressed, usually), read as the job's config says.
        request = stt_pb2.DiarizeRequest(
            config=config, audio=stt_pb2.RecognitionAudio(content=content)
        )
        response = self._caller.call(self._stub.Diarize, request, request_id, stop)
        return label_results(results, response.turns), response.speaker_count
