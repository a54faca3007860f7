"""Where and how the model runs: device, precision, threads, GPU memory and window length."""

from __future__ import annotations

import torch

from services.ctc.settings import CtcSettings

GIB = 1024**3
# Longest window for the GPU memory each concurrent inference may use (the old service's
# 20/25/30 s steps); attention memory grows with the square of the window.
GPU_WINDOWS = ((30.0, 4 * GIB), (25.0, 2 * GIB))
SMALLEST_GPU_WINDOW_S = 20.0
# On CPU the window is fixed: longer windows cost more per second of audio, and a CPU has no
# memory to choose by.
CPU_WINDOW_S = 20.0


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def configure(settings: CtcSettings, device: str) -> None:
    """Process-wide torch settings, before the model is loaded."""
    if device == "cuda":
        torch.cuda.set_per_process_memory_fraction(settings.gpu_memory_fraction)
    elif settings.cpu_threads:
        torch.set_num_threads(settings.cpu_threads)


def wanted_dtype(compute_type: str, device: str) -> torch.dtype:
    if compute_type == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return torch.float16 if compute_type == "float16" else torch.float32


def compile_wanted(setting: str, device: str) -> bool:
    return setting == "on" or (setting == "auto" and device == "cuda")


def window_seconds(settings: CtcSettings, device: str) -> float:
    """The window length: the setting when given, else by free GPU memory, else fixed."""
    if settings.chunk_seconds:
        return settings.chunk_seconds
    if device != "cuda":
        return CPU_WINDOW_S
    free, total = torch.cuda.mem_get_info()
    allowed = settings.gpu_memory_fraction * total - torch.cuda.memory_reserved()
    return gpu_window_seconds(min(free, allowed) / settings.max_concurrency)


def gpu_window_seconds(bytes_per_inference: float) -> float:
    for seconds, needs in GPU_WINDOWS:
        if bytes_per_inference >= needs:
            return seconds
    return SMALLEST_GPU_WINDOW_S
