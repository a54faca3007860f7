"""Google Cloud Speech v1's LongRunningRecognize as an stt.v1 job, and the job's operation in
Google's messages: the SpeechClient polls it through google.longrunning.Operations on the same
port and unpacks only `google.cloud.speech.v1` types from it.

The job is the stt.v1 one (the same store, workers and request path); only the request on the
way in, and the response and metadata on the way out, are Google's.
"""

from __future__ import annotations

from urllib.parse import urlparse

from google.cloud.speech_v1.types import cloud_speech
from stt.v1 import stt_pb2

from services.router.dropin.fields import unsupported
from services.router.dropin.google_convert import ROUTED_MODELS, google_results, recognition_config
from services.router.jobs.operations import Dialect

LongRunningRecognizeRequest = cloud_speech.LongRunningRecognizeRequest.pb()
LongRunningRecognizeResponse = cloud_speech.LongRunningRecognizeResponse.pb()
LongRunningRecognizeMetadata = cloud_speech.LongRunningRecognizeMetadata.pb()
# Schemes the workers read: objects in allowed buckets (gs://, s3://), files, URLs.
READABLE = ("gs", "s3", "file", "http", "https")


def long_running_request(request, backends: list[str]) -> stt_pb2.LongRunningRecognizeRequest:
    """The request as an stt.v1 LongRunningRecognizeRequest (checked as Recognize is; the
    job store checks the audio)."""
    if request.HasField("output_config"):
        raise unsupported("output_config", "results come back in the operation, not in a bucket")
    config, backend = recognition_config(request.config, backends, "config")
    if backend is not None:
        routed = ", ".join(repr(name) for name in ROUTED_MODELS)
        raise unsupported(
            f"config.model {backend!r}",
            f"jobs are routed by language; use one of {routed} for long_running_recognize",
        )
    stt_request = stt_pb2.LongRunningRecognizeRequest(config=config)
    source = request.audio.WhichOneof("audio_source")
    if source == "uri":
        scheme = urlparse(request.audio.uri).scheme
        if scheme not in READABLE:
            why = f"{scheme}:// is not readable here" if scheme else "it names no scheme"
            raise unsupported(
                f"audio.uri {request.audio.uri[:200]!r}",
                f"{why}; give a gs:// or s3:// object, a file:// path the workers can read "
                "or an http(s):// URL (such as a signed URL of the object)",
            )
        stt_request.audio.uri = request.audio.uri
    elif source == "content":
        stt_request.audio.content = request.audio.content
    return stt_request


def long_running_response(response: stt_pb2.LongRunningRecognizeResponse):
    return LongRunningRecognizeResponse(
        results=google_results(response.results), total_billed_time=response.total_billed_time
    )


def long_running_metadata(metadata: stt_pb2.LongRunningRecognizeMetadata):
    return LongRunningRecognizeMetadata(
        progress_percent=metadata.progress_percent,
        start_time=metadata.start_time,
        last_update_time=metadata.last_update_time,
        uri=metadata.uri,
    )


DIALECT = Dialect(response=long_running_response, metadata=long_running_metadata)
