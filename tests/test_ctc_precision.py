"""Precision and device: float16 falls back to float32 without a request seeing it, compile
failures fall back to eager, and the GPU paths run where there is a GPU."""

import logging

import grpc
import pytest
import torch
from stt.v1 import stt_pb2

from services.core.backend import DecodeOptions
from services.core.cancellation import Cancellation
from tests.ctc_support import (
    TINY_CASES,
    NonFiniteInHalf,
    RaisesInHalf,
    WontLoadInHalf,
    arm,
    model_dir,
    settings,
    with_model,
)
from tests.support import clip, metric, request, running, transcript

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def precision(server) -> str:
    return server.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest()).precision


@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_float16_runs_when_it_works(tiny_models, audio_dir, case):
    config = settings(case, model_dir(case, tiny_models), compute_type="float16")
    with running(case.service, config, case.module.Backend(config)) as server:
        assert server.wait_loaded()
        assert precision(server) == "float16"
        assert server.stub.Recognize(request(clip(case.clip))).results


@pytest.mark.parametrize("fault", [RaisesInHalf, NonFiniteInHalf], ids=["raises", "non-finite"])
@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_float32_fallback_engages_when_float16_fails(tiny_models, audio_dir, caplog, case, fault):
    model = model_dir(case, tiny_models)
    content = request(clip(case.clip), language_code=case.language)
    reference = settings(case, model, compute_type="float32", cache_size=0)
    with running(case.service, reference, case.module.Backend(reference)) as server:
        assert server.wait_loaded()
        expected = transcript(server.stub.Recognize(content))
    config = settings(case, model, compute_type="float16", cache_size=0)
    backend = with_model(case, fault)(config)
    with running(case.service, config, backend) as server:
        assert server.wait_loaded()
        arm(backend)
        assert precision(server) == "float16"
        with caplog.at_level(logging.WARNING, logger="stt.ctc"):
            response = server.stub.Recognize(content)  # float16 fails inside this request
        assert transcript(response) == expected  # which never sees the failure
        assert precision(server) == "float32"
        assert "falling back to float32" in caplog.text
        assert transcript(server.stub.Recognize(content)) == expected


def test_float32_when_float16_will_not_load(tiny_models, audio_dir):
    case = TINY_CASES[0]
    config = settings(case, model_dir(case, tiny_models), compute_type="float16")
    with running(case.service, config, with_model(case, WontLoadInHalf)(config)) as server:
        assert server.wait_loaded()
        assert precision(server) == "float32"
        assert server.stub.Recognize(request(clip(case.clip))).results


def test_compile_failure_falls_back_to_eager(tiny_models, monkeypatch):
    def broken_compile(module, **options):
        def compiled(**inputs):
            raise RuntimeError("forced: no compiler here")

        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    case = TINY_CASES[1]
    backend = case.module.Backend(settings(case, model_dir(case, tiny_models), torch_compile="on"))
    backend.load()
    backend.warm_up()
    assert backend._model._forward is backend._model.module
    audio = torch.zeros(16_000).uniform_(-0.1, 0.1).numpy()
    backend.transcribe(audio, DecodeOptions(), Cancellation())


def test_a_model_that_cannot_be_found_is_never_ready(tmp_path):
    case = TINY_CASES[0]
    config = settings(case, tmp_path / "no-such-model")
    with running(case.service, config, case.module.Backend(config)) as server:
        assert not server.wait_loaded()
        with pytest.raises(grpc.RpcError) as refused:
            server.stub.Recognize(request(b"RIFF"))
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("case", TINY_CASES, ids=[c.id for c in TINY_CASES])
def test_gpu_float16_with_a_memory_cap(tiny_models, audio_dir, case):
    config = settings(case, model_dir(case, tiny_models), device="auto", gpu_memory_fraction=0.5)
    backend = case.module.Backend(config)
    with running(case.service, config, backend) as server:
        assert server.wait_loaded()
        info = server.stub.GetServiceInfo(stt_pb2.GetServiceInfoRequest())
        assert info.device == "cuda" and info.precision == "float16"
        assert backend.window_seconds in (20.0, 25.0, 30.0)
        assert server.stub.Recognize(request(clip(case.clip))).results
        # What the chart's GPU memory alert divides: held memory by the card's size.
        reserved = metric(server, "stt_gpu_memory_bytes", kind="reserved")
        total = metric(server, "stt_gpu_memory_bytes", kind="total")
        assert 0 < reserved < total == torch.cuda.get_device_properties(0).total_memory
