"""The job worker: claims jobs from the store, transcribes them chunk by chunk through the
router, and records how each ended (`stt worker`, and the worker `stt up` starts)."""
