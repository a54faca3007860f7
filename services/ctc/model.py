"""A transformers CTC model on CPU or GPU, with float16 made safe.

float16 halves a GPU's memory and time, but some checkpoints overflow in it or some kernels
lack it. Each float16 pass is checked: an error or a non-finite output switches the model to
float32 for good (logged once) and the pass runs again, so no request sees the failure.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoModelForCTC, AutoProcessor
from transformers.utils import logging as hf_logging

from services.core.errors import Overloaded
from services.ctc import device as device_mod
from services.ctc.settings import CtcSettings

log = logging.getLogger("stt.ctc")
OOM_RETRY_S = 1.0


class CtcModel:
    def __init__(self, settings: CtcSettings):
        self._settings = settings
        self._switch = threading.Lock()
        self.device = "cpu"
        self.dtype = torch.float32
        self.processor = None
        self.module: torch.nn.Module | None = None
        self._forward = None
        self._input_name = ""

    @property
    def compiled(self) -> bool:
        return self._forward is not None and self._forward is not self.module

    @property
    def precision(self) -> str:
        return "float16" if self.dtype == torch.float16 else "float32"

    def load(self) -> None:
        s = self._settings
        hf_logging.disable_progress_bar()
        self.device = device_mod.pick_device(s.device)
        device_mod.configure(s, self.device)
        # A hub id is fetched into the Hugging Face cache (HF_HOME), or only looked up
        # there when HF_HUB_OFFLINE=1; a folder is read as it is.
        # B615 (no revision pinned): the model is the operator's own setting, and under the
        # chart it is read from the cache `stt fetch` filled, offline.
        self.processor = AutoProcessor.from_pretrained(s.model)  # nosec B615 # see above
        module = AutoModelForCTC.from_pretrained(s.model)  # nosec B615 # see above
        self.module = module.eval()
        self._input_name = self.processor.feature_extractor.model_input_names[0]
        self._place(device_mod.wanted_dtype(s.compute_type, self.device))
        self._forward = self.module
        if device_mod.compile_wanted(s.torch_compile, self.device):
            self._forward = torch.compile(self.module, dynamic=True)

    @property
    def takes_padding(self) -> bool:
        """Whether windows of different lengths may share a batch: the model takes an
        attention mask. Models that normalise over time without one (wav2vec2 base's group
        norm) would hear the padding, so only windows of one length batch for them."""
        return bool(getattr(self.processor.feature_extractor, "return_attention_mask", False))

    def log_probs(self, inputs: np.ndarray) -> np.ndarray:
        """Per-frame log-probabilities, float32 (frames, outputs), for one window of inputs."""
        return self.log_probs_batch([inputs])[0]

    def log_probs_batch(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """`log_probs` of several windows in one pass; a batch too big for the GPU's memory
        is run again one window at a time."""
        try:
            return self._log_probs(Batch.of(windows))
        except torch.cuda.OutOfMemoryError as error:
            torch.cuda.empty_cache()
            if len(windows) > 1:
                return [self.log_probs(window) for window in windows]
            raise Overloaded("GPU memory is exhausted; retry shortly", OOM_RETRY_S) from error

    def _log_probs(self, batch: Batch) -> list[np.ndarray]:
        with torch.inference_mode():
            logits = self._half(batch) if self.dtype == torch.float16 else None
            if logits is None:
                logits = self._run(batch)
                if not self._finite(batch, logits):
                    raise RuntimeError("the model gave non-finite logits in float32")
            log_probs = torch.log_softmax(logits, dim=-1).cpu().numpy()
        return [log_probs[i, :count] for i, count in enumerate(self._frames(batch, logits))]

    def _frames(self, batch: Batch, logits: torch.Tensor) -> list[int]:
        """Output frames of each window: what it gives alone, whatever the padding."""
        if batch.mask is None:
            return [logits.shape[1]] * len(batch.lengths)
        lengths = self.module._get_feat_extract_output_lengths(torch.tensor(batch.lengths))
        return [int(count) for count in lengths]

    def _finite(self, batch: Batch, logits: torch.Tensor) -> bool:
        """Whether every window's own frames are finite (padded frames are never read)."""
        frames = self._frames(batch, logits)
        return all(bool(torch.isfinite(logits[i, :n]).all()) for i, n in enumerate(frames))

    def _half(self, batch: Batch) -> torch.Tensor | None:
        """float16 logits, or None after switching to float32 because float16 failed."""
        try:
            logits = self._run(batch)
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError as error:
            self._fall_back(f"float16 inference failed: {error}")
            return None
        if not self._finite(batch, logits):
            self._fall_back("float16 inference gave non-finite logits")
            return None
        return logits

    def _run(self, batch: Batch) -> torch.Tensor:
        """One forward pass in the current precision: float32 logits (windows, frames, outputs)."""
        inputs = {self._input_name: batch.values.to(self.device, self.dtype)}
        if batch.mask is not None:
            inputs["attention_mask"] = batch.mask.to(self.device)
        try:
            return self._forward(**inputs).logits.float()
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:
            if self._forward is self.module:
                raise
            # torch.compile can fail in many ways on a new machine; eager mode still works.
            log.warning("torch.compile failed; running eagerly", extra={"error": str(error)})
            self._forward = self.module
            return self._forward(**inputs).logits.float()

    def _place(self, dtype: torch.dtype) -> None:
        try:
            self._move(dtype)
            self.dtype = dtype
        except RuntimeError as error:
            if dtype != torch.float16:
                raise
            log.warning("float16 load failed; using float32", extra={"reason": str(error)[:500]})
            self._move(torch.float32)
            self.dtype = torch.float32

    def _fall_back(self, reason: str) -> None:
        with self._switch:
            if self.dtype == torch.float32:
                return  # another request already switched
            log.warning("falling back to float32", extra={"reason": reason[:500]})
            self._move(torch.float32)
            self.dtype = torch.float32

    def _move(self, dtype: torch.dtype) -> None:
        self.module.to(self.device, dtype)


@dataclass(frozen=True)
class Batch:
    """Windows stacked for one pass: padded at the end, with a mask, when their lengths
    differ; a single window or windows of one length go as they are."""

    values: torch.Tensor
    mask: torch.Tensor | None
    lengths: tuple[int, ...]

    @classmethod
    def of(cls, windows: list[np.ndarray]) -> Batch:
        lengths = tuple(len(window) for window in windows)
        if len(set(lengths)) == 1:
            return cls(torch.from_numpy(np.stack(windows)), None, lengths)
        longest = max(lengths)
        padded = np.zeros((len(windows), longest, *windows[0].shape[1:]), dtype=np.float32)
        mask = torch.zeros((len(windows), longest), dtype=torch.long)
        for i, window in enumerate(windows):
            padded[i, : len(window)] = window
            mask[i, : len(window)] = 1
        return cls(torch.from_numpy(padded), mask, lengths)
