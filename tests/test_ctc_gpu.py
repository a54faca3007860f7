"""The CTC models on a CUDA GPU, at the backend (no server): float16 under the memory cap the
settings give, and float16 faults on the card falling back to float32 with the same text.
Skipped without a GPU. It imports none of the serving stack, so a GPU machine runs it with
torch, transformers and the settings' few packages alone:
`pytest --noconftest tests/test_ctc_gpu.py`."""

import numpy as np
import pytest
import torch

from services.core.backend import DecodeOptions
from services.core.cancellation import Cancellation
from tests.ctc_support import (
    TINY_CASES,
    NonFiniteInHalf,
    RaisesInHalf,
    TinyModels,
    arm,
    model_dir,
    settings,
    with_model,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
MEMORY_FRACTION = 0.5
IDS = [c.id for c in TINY_CASES]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny-ctc"))


def loaded(backend_class, config):
    backend = backend_class(config)
    backend.load()
    backend.warm_up()
    return backend


def text_of(backend) -> str:
    audio = np.random.default_rng(7).uniform(-0.2, 0.2, 3 * 16_000).astype(np.float32)
    transcript = backend.transcribe(audio, DecodeOptions(), Cancellation())
    return " ".join(s.text for s in transcript.segments)


@pytest.mark.parametrize("case", TINY_CASES, ids=IDS)
def test_float16_on_the_card_under_its_memory_cap(tiny, case):
    config = settings(
        case, model_dir(case, tiny), device="auto", gpu_memory_fraction=MEMORY_FRACTION
    )
    backend = loaded(case.module.Backend, config)
    assert (backend.info.device, backend.info.precision) == ("cuda", "float16")
    assert backend.window_seconds in (20.0, 25.0, 30.0)
    text_of(backend)
    assert backend.info.precision == "float16"  # the pass ran on the card, without falling back
    total = torch.cuda.get_device_properties(0).total_memory
    with pytest.raises(torch.cuda.OutOfMemoryError):  # the cap holds for this process
        torch.empty(int((MEMORY_FRACTION + 0.1) * total), dtype=torch.uint8, device="cuda")


@pytest.mark.parametrize("fault", [RaisesInHalf, NonFiniteInHalf], ids=["raises", "non-finite"])
@pytest.mark.parametrize("case", TINY_CASES, ids=IDS)
def test_a_float16_fault_on_the_card_falls_back_to_float32(tiny, case, fault):
    model = model_dir(case, tiny)
    reference = loaded(case.module.Backend, settings(case, model, compute_type="float32"))
    assert reference.info.device == "cuda"
    expected = text_of(reference)
    faulty = loaded(with_model(case, fault), settings(case, model, compute_type="float16"))
    assert faulty.info.precision == "float16"
    arm(faulty)
    assert text_of(faulty) == expected  # float16 broke inside this call, which never saw it
    assert faulty.info.precision == "float32"
