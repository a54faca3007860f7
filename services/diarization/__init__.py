"""diarization: who spoke when, as its own service on the serving core (stt.v1.Diarization)."""
