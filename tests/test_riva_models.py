"""Riva's model entries (`services.router.dropin.riva_models`), read as Riva's scripts read
them: entries of type `offline` (or `online`) grouped by `language_code`."""

from __future__ import annotations

import pytest
from riva.client.proto import riva_asr_pb2 as riva

from services.router.dropin.riva_models import model_configs, model_parameters


def listed(response: riva.RivaSpeechRecognitionConfigResponse, kind: str) -> dict[str, list]:
    """What `--list-models` prints, for offline (kind "offline") or streaming ("online")."""
    models: dict[str, list] = {}
    for config in response.model_config:
        if config.parameters["type"] == kind:
            language = config.parameters["language_code"]
            models.setdefault(language, []).append({"model": [config.model_name]})
    return dict(sorted(models.items()))


def test_a_streaming_model_is_listed_offline_and_online():
    response = riva.RivaSpeechRecognitionConfigResponse()
    response.model_config.extend(model_configs("whisper_en", ["en-US"], True, "whisper"))
    response.model_config.extend(model_configs("hausa_stt", ["ha"], False, "ctc"))
    wire = riva.RivaSpeechRecognitionConfigResponse.FromString(response.SerializeToString())
    assert listed(wire, "offline") == {
        "en-US": [{"model": ["whisper_en"]}],
        "ha": [{"model": ["hausa_stt"]}],
    }
    assert listed(wire, "online") == {"en-US": [{"model": ["whisper_en"]}]}


def test_parameters_hold_what_riva_sets():
    assert model_parameters("offline", ["en-US", "es-US"], "whisper", 16_000) == {
        "type": "offline",
        "language_code": "en-US,es-US",
        "offline": "True",
        "streaming": "False",
        "sample_rate": "16000",
        "model_family": "whisper",
    }
    online = model_parameters("online", ["de-DE"], "whisper", extra={"service": "whisper_en"})
    assert (online["type"], online["offline"], online["streaming"]) == ("online", "False", "True")
    assert online["service"] == "whisper_en"


def test_bad_entries_are_refused():
    with pytest.raises(ValueError, match="kind must be"):
        model_parameters("offline,online", ["en"], "whisper")
    with pytest.raises(ValueError, match="one or more codes"):
        model_parameters("offline", [], "whisper")
    with pytest.raises(ValueError, match="one or more codes"):
        model_parameters("offline", ["en,de"], "whisper")
    with pytest.raises(ValueError, match="may not set language_code, type"):
        model_parameters("offline", ["en"], "whisper", extra={"type": "x", "language_code": "y"})
