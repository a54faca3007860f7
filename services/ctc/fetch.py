"""Puts a CTC service's model where `stt serve` will read it, without loading it.

A hub id is downloaded into the Hugging Face cache (`HF_HOME`), where `from_pretrained` finds
it; a folder stays as it is. Other frameworks' weights and training leftovers are skipped:
transformers on torch reads none of them.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import snapshot_download

from services.ctc.settings import CtcSettings

NOT_READ = (
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.onnx",
    "*.tflite",
    "flax_model*",
    "tf_model*",
    "rust_model*",
    "optimizer*",
    "scheduler*",
    "trainer_state*",
    "training_args*",
    "checkpoint-*",
    "runs/*",
)


def fetch(settings: CtcSettings) -> str:
    """The model's local folder, fetched into the cache when it was not there."""
    folder = Path(settings.model).expanduser()
    if folder.is_dir():
        return str(folder)
    # B615 (no revision pinned): the hub id is the operator's own setting, with no revision of
    # ours to pin; it is fetched once into the cache, which the service reads offline.
    skipped = list(NOT_READ)
    return snapshot_download(settings.model, ignore_patterns=skipped)  # nosec B615 # above
