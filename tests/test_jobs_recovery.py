"""Jobs survive what happens to the processes that run them: a worker killed mid-job (its job
is finished by the next worker from its last finished chunk, nothing lost or doubled), two
workers sharing a PostgreSQL store (never the same job at once), and `stt up` stopped and
started again on the same data directory (every job and result kept)."""

import json
import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
from google.longrunning import operations_pb2_grpc
from stt.v1 import stt_pb2_grpc

from services import stack
from services.core.audio import AudioLimits, AudioSpec, decode
from services.jobs.db import open_database
from services.jobs.store import Store
from services.jobs.worker import chunks
from tests.jobs_support import (
    get,
    job_transcript,
    jobs_router,
    kill,
    metadata_of,
    response_of,
    submit,
    wait_done,
    worker_process,
)
from tests.support import REPO, clip, encode, manifest, metric, words
from tests.test_stack import free_offset, wait_serving

CLIPS = (
    "en/jfk.flac",
    "en/mr_quilter_picovoice_leopard.wav",
    "en/librispeech_1995-1837-0001.wav",
    "en/librispeech_2412-153948-0000.flac",
)
# A word of each clip that none of the others says.
MARKS = ("americans", "apostle", "sorrow", "antecedents")


def concatenated(paths) -> bytes:
    """The clips one after the other, a second of silence apart, as one FLAC file."""
    limits = AudioLimits(1 << 30, 3600)
    pause = np.zeros(16_000, dtype=np.float32)
    parts = []
    for path in paths:
        parts += [decode(clip(path), AudioSpec(), limits).samples, pause]
    return encode(np.concatenate(parts), 16_000, "flac", "flac")


def assert_each_clip_once(text: str) -> None:
    heard = words(text)
    assert [heard.count(mark) for mark in MARKS] == [1] * len(MARKS), text


def recognize_calls(router) -> float:
    return metric(router, "stt_router_requests_total", method="Recognize")


def test_a_killed_worker_s_job_is_finished_by_the_next_from_its_last_chunk(
    whisper_server, audio_dir, tmp_path
):
    flags = ["--data-dir", str(tmp_path)]
    with jobs_router(whisper_server.target, data_dir=tmp_path) as router:
        first = worker_process(router.target, flags, tmp_path / "worker1.log", chunk_seconds=12)
        second = None
        try:
            name = submit(router, concatenated(CLIPS), language_code="en").name
            deadline = time.monotonic() + 120
            while metadata_of(get(router, name)).progress_percent == 0:
                assert time.monotonic() < deadline, (tmp_path / "worker1.log").read_text()
                time.sleep(0.05)
            kill(first)
            killed_at = metadata_of(get(router, name)).progress_percent
            assert 0 < killed_at < 100
            second = worker_process(
                router.target, flags, tmp_path / "worker2.log", chunk_seconds=12
            )
            done = wait_done(router, name, 180)
        finally:
            kill(first)
            if second is not None:
                kill(second)
        assert_each_clip_once(job_transcript(done))
        store = Store(open_database(tmp_path, "", 1), 3600)
        job = store.get(name)
        plan = chunks.loads(job.plan)
        assert job.attempts == 2 and len(plan) >= 3
        # Chunks finished before the kill were not sent again: at most the one in flight was.
        assert len(plan) <= recognize_calls(router) <= len(plan) + 1
        store.close()


def test_two_workers_on_postgresql_never_run_the_same_job(
    whisper_server, audio_dir, postgres_url, tmp_path
):
    flags = ["--database-url", postgres_url]
    with jobs_router(whisper_server.target, database_url=postgres_url) as router:
        workers = [
            worker_process(router.target, flags, tmp_path / f"worker{i}.log") for i in range(2)
        ]
        try:
            names = [submit(router, clip(path), language_code="en").name for path in CLIPS]
            done = [wait_done(router, name, 240) for name in names]
            calls = recognize_calls(router)
        finally:
            for worker in workers:
                kill(worker)
    expected = {row["path"]: row["transcript"] for row in manifest()}
    for path, operation, mark in zip(CLIPS, done, MARKS, strict=True):
        assert mark in words(job_transcript(operation)), expected[path]
    store = Store(open_database(None, postgres_url, 1), 3600)
    jobs = [store.get(name) for name in names]
    store.close()
    assert [job.attempts for job in jobs] == [1] * len(CLIPS)
    # Every chunk of every job was sent exactly once: no job ran on both workers.
    assert calls == sum(len(chunks.loads(job.plan)) for job in jobs)


class StackClient:
    """The calls a client makes to `stt up`'s router."""

    def __init__(self, target: str):
        self.channel = grpc.insecure_channel(target)
        self.stub = stt_pb2_grpc.SpeechStub(self.channel)
        self.operations = operations_pb2_grpc.OperationsStub(self.channel)


def stt_up(data_dir, offset: int, model, log) -> subprocess.Popen:
    env = {**os.environ, "WHISPER_EN_MODEL": str(model), "WHISPER_EN_CPU_THREADS": "2"}
    env.update({"WORKER_LEASE_S": "3", "WORKER_HEARTBEAT_S": "0.5", "WORKER_POLL_S": "0.2"})
    command = [sys.executable, "-m", "services.cli", "up", "--port-offset", str(offset)]
    command += ["--data-dir", str(data_dir)]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)


def test_stt_up_restarted_on_the_same_data_dir_keeps_jobs_and_results(
    whisper_model, audio_dir, tmp_path
):
    offset = free_offset()
    data = tmp_path / "data"
    target = f"127.0.0.1:{stack.ROUTER_GRPC_PORT + offset}"
    with open(tmp_path / "up.log", "ab") as log:
        _restart_and_check(data, offset, target, whisper_model, log)
    lines = (tmp_path / "up.log").read_text().splitlines()
    stops = [json.loads(line) for line in lines if '"msg": "all stopped"' in line]
    assert [stop["exit_codes"]["worker"] for stop in stops] == [0, 0]
    assert all(code == 0 for stop in stops for code in stop["exit_codes"].values())


def _restart_and_check(data, offset: int, target: str, whisper_model, log) -> None:
    up = stt_up(data, offset, whisper_model, log)
    try:
        router = StackClient(target)
        wait_serving(router.channel, 180)
        finished = wait_done(router, submit(router, clip(CLIPS[0]), language_code="en").name)
        pending = submit(router, clip(CLIPS[1]), language_code="en").name
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        router.channel.close()
        assert (data / "jobs.sqlite3").is_file()

        up = stt_up(data, offset, whisper_model, log)
        router = StackClient(target)
        wait_serving(router.channel, 180)
        assert get(router, finished.name) == finished, "the result came back as it was"
        resumed = wait_done(router, pending, 120)
        assert "apostle" in words(job_transcript(resumed))
        assert response_of(resumed).service == "whisper_en"
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
