"""The model entries of Riva's `GetRivaSpeechRecognitionConfig`, as Riva's own clients read
them.

Riva's scripts (`transcribe_file_offline.py --list-models`, `transcribe_file.py
--list-models`) keep the entries whose `parameters["type"]` is exactly `offline` (or exactly
`online`, for streaming) and group their `model_name`s by `parameters["language_code"]`. A
Riva server lists a model once for each way it serves: an offline and a streaming build are
two entries. Beside those two keys it sets `streaming`, `offline`, `sample_rate` and
`model_family` (a multilingual model's `language_code` is its codes joined by commas), which
other clients show. Booleans are written as Riva writes them, `True` and `False`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from riva.client.proto import riva_asr_pb2 as riva

OFFLINE, ONLINE = "offline", "online"
Config = riva.RivaSpeechRecognitionConfigResponse.Config


def model_parameters(
    kind: str,
    language_codes: Sequence[str],
    model_family: str,
    sample_rate_hz: int = 16_000,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The `parameters` of one entry: `kind` is OFFLINE (Recognize) or ONLINE
    (StreamingRecognize). `extra` adds keys of the deployment's own; it cannot change the
    keys Riva's clients read."""
    if kind not in (OFFLINE, ONLINE):
        raise ValueError(f"kind must be {OFFLINE!r} or {ONLINE!r}, not {kind!r}")
    codes = [code.strip() for code in language_codes]
    if not codes or not all(codes) or any("," in code for code in codes):
        raise ValueError(f"language_codes must be one or more codes without commas: {codes}")
    parameters = {
        "type": kind,
        "language_code": ",".join(codes),
        "offline": str(kind == OFFLINE),
        "streaming": str(kind == ONLINE),
        "sample_rate": str(sample_rate_hz),
        "model_family": model_family,
    }
    clash = sorted(set(extra or {}) & set(parameters))
    if clash:
        raise ValueError(f"extra parameters may not set {', '.join(clash)}")
    return {**parameters, **(extra or {})}


def model_configs(
    model_name: str,
    language_codes: Sequence[str],
    streaming_supported: bool,
    model_family: str,
    sample_rate_hz: int = 16_000,
    extra: Mapping[str, str] | None = None,
) -> list[Config]:
    """The entries of one model under one name: offline always, online too when it streams,
    so each `--list-models` lists it under its languages."""
    kinds = (OFFLINE, ONLINE) if streaming_supported else (OFFLINE,)
    return [
        Config(
            model_name=model_name,
            parameters=model_parameters(kind, language_codes, model_family, sample_rate_hz, extra),
        )
        for kind in kinds
    ]
