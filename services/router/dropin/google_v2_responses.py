"""stt.v1 answers as Google Cloud Speech v2's (`speech_v2` types): results with their words,
channel and language, the response metadata (request id, billed duration), and a stream's
speech events."""

from __future__ import annotations

from google.cloud.speech_v2.types import cloud_speech as v2
from stt.v1 import stt_pb2

RecognizeResponse = v2.RecognizeResponse.pb()
StreamingRecognizeResponse = v2.StreamingRecognizeResponse.pb()


def recognize_response(response: stt_pb2.RecognizeResponse):
    answer = RecognizeResponse(results=[_result(r) for r in response.results])
    answer.metadata.request_id = response.request_id
    answer.metadata.total_billed_duration.CopyFrom(response.total_billed_time)
    return answer


def streaming_response(response: stt_pb2.StreamingRecognizeResponse):
    event = stt_pb2.StreamingRecognizeResponse.SpeechEventType.Name(response.speech_event_type)
    kind = "SPEECH_EVENT_TYPE_UNSPECIFIED" if event == "SPEECH_EVENT_UNSPECIFIED" else event
    answer = StreamingRecognizeResponse(
        speech_event_type=StreamingRecognizeResponse.SpeechEventType.Value(kind)
    )
    if response.HasField("speech_event_offset"):
        answer.speech_event_offset.CopyFrom(response.speech_event_offset)
    answer.metadata.request_id = response.request_id
    for result in response.results:
        answer.results.add(
            alternatives=[_alternative(a) for a in result.alternatives],
            is_final=result.is_final,
            stability=result.stability,
            result_end_offset=result.result_end_offset,
            channel_tag=result.channel_tag,
            language_code=result.language_code,
        )
    return answer


def _result(result: stt_pb2.SpeechRecognitionResult):
    return v2.SpeechRecognitionResult.pb()(
        alternatives=[_alternative(a) for a in result.alternatives],
        channel_tag=result.channel_tag,
        result_end_offset=result.result_end_offset,
        language_code=result.language_code,
    )


def _alternative(alternative: stt_pb2.SpeechRecognitionAlternative):
    answer = v2.SpeechRecognitionAlternative.pb()(
        transcript=alternative.transcript, confidence=alternative.confidence
    )
    for word in alternative.words:
        answer.words.add(
            start_offset=word.start_offset,
            end_offset=word.end_offset,
            word=word.word,
            confidence=word.confidence,
            speaker_label=word.speaker_label,
        )
    return answer
