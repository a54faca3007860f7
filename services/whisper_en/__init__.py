"""whisper_en: Whisper (faster-whisper / CTranslate2) on the shared serving core."""
