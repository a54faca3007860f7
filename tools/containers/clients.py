"""What clients do through the router's container: `stt check` (the chart's `helm test` pod,
on the pods' network), Recognize, a job through LongRunningRecognize and the Operations
service, and OpenAI's transcription API (the `openai` client as it is), each on the ports
the router's pod publishes on 127.0.0.1.

A transcript must be the expected one: the jfk clip's exactly as MANIFEST.tsv has it; an
espeak-ng clip's word for word (case and punctuation aside) but for one word in ten (at
least one), since int8 inference on another CPU may hear a synthetic voice's word otherwise."""

from __future__ import annotations

import time

import grpc
import jiwer
import openai
from google.longrunning import operations_pb2, operations_pb2_grpc
from stt.v1 import stt_pb2, stt_pb2_grpc

from tools.containers.audio import Clip, words
from tools.containers.engine import EngineError
from tools.containers.pods import Cluster
from tools.containers.podspec import PodPlan

JOB_WITHIN_S = 300.0


class CheckFailed(AssertionError):
    """A client got an answer other than the one expected."""


def matches(clip: Clip, text: str) -> bool:
    if clip.name == "jfk":
        return text == clip.text
    said, heard = words(clip.text), words(text)
    if not heard:
        return False
    errors = round(jiwer.wer(" ".join(said), " ".join(heard)) * len(said))
    return errors <= max(1, len(said) // 10)


def _expect(kind: str, clip: Clip, text: str) -> dict:
    if not matches(clip, text):
        raise CheckFailed(f"{kind} of {clip.name}: heard {text!r}, expected {clip.text!r}")
    return {"check": kind, "clip": clip.name, "text": text}


def helm_test(cluster: Cluster, plan: PodPlan, within_s: float = 120) -> dict:
    """The `helm test` pod to its end: its containers must exit 0."""
    pod = cluster.start(plan)
    results = []
    for name, started in pod.containers.items():
        deadline = time.monotonic() + within_s
        while cluster.running(started.plan.podman_name):
            if time.monotonic() > deadline:
                raise CheckFailed(f"{started.plan.podman_name} ran past {within_s:.0f} s")
            time.sleep(0.5)
        code = cluster.exit_code(started.plan.podman_name)
        log = cluster.save_log(started.plan.podman_name)
        if code != 0:
            raise CheckFailed(f"helm test {plan.name}/{name} exited {code}:\n{log[-2000:]}")
        results.append({"check": "helm test", "container": name, "exit": code})
    return {"check": "helm test", "pod": plan.name, "containers": results}


def recognize(grpc_port: int, clip: Clip) -> dict:
    request = stt_pb2.RecognizeRequest(
        config=stt_pb2.RecognitionConfig(language_code="en-US"),
        audio=stt_pb2.RecognitionAudio(content=clip.content),
    )
    started = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        response = stt_pb2_grpc.SpeechStub(channel).Recognize(request, timeout=120)
    text = " ".join(r.alternatives[0].transcript for r in response.results).strip()
    return {**_expect("Recognize", clip, text), "seconds": round(time.monotonic() - started, 2)}


def long_running(grpc_port: int, clip: Clip, speakers: int) -> dict:
    """A job with speaker labels: the worker beside the router runs it, sending its chunks to
    the router and its audio to the diarization service."""
    config = stt_pb2.RecognitionConfig(
        language_code="en-US",
        diarization_config=stt_pb2.SpeakerDiarizationConfig(enable_speaker_diarization=True),
    )
    request = stt_pb2.LongRunningRecognizeRequest(
        config=config, audio=stt_pb2.RecognitionAudio(content=clip.content)
    )
    started = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        name = stt_pb2_grpc.SpeechStub(channel).LongRunningRecognize(request, timeout=60).name
        operations = operations_pb2_grpc.OperationsStub(channel)
        operation = _wait(operations, name)
    if not operation.HasField("response"):
        raise CheckFailed(f"job {name} failed: {operation.error.code} {operation.error.message}")
    response = stt_pb2.LongRunningRecognizeResponse()
    operation.response.Unpack(response)
    text = " ".join(r.alternatives[0].transcript for r in response.results).strip()
    found = _expect("LongRunningRecognize", clip, text)
    if response.speaker_count != speakers:
        raise CheckFailed(f"job {name}: {response.speaker_count} speakers, not {speakers}")
    seconds = round(time.monotonic() - started, 2)
    return {**found, "job": name, "speakers": response.speaker_count, "seconds": seconds}


def _wait(operations, name: str) -> operations_pb2.Operation:
    deadline = time.monotonic() + JOB_WITHIN_S
    while time.monotonic() < deadline:
        request = operations_pb2.GetOperationRequest(name=name)
        operation = operations.GetOperation(request, timeout=10)
        if operation.done:
            return operation
        time.sleep(0.5)
    raise CheckFailed(f"job {name} was not done within {JOB_WITHIN_S:.0f} s")


def openai_transcription(http_port: int, clip: Clip) -> dict:
    suffix = "flac" if clip.name == "jfk" else "wav"
    base_url = f"http://127.0.0.1:{http_port}/v1"
    started = time.monotonic()
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        try:
            result = client.audio.transcriptions.create(
                file=(f"{clip.name}.{suffix}", clip.content), model="whisper-1", language="en"
            )
        except openai.APIError as error:
            raise EngineError(f"the OpenAI API refused {clip.name}: {error}") from error
    found = _expect("OpenAI transcription", clip, result.text)
    return {**found, "seconds": round(time.monotonic() - started, 2)}
