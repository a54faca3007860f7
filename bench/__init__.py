"""Benchmarks: whisper_en over gRPC against faster-whisper called in process, side by side.

`python -m bench.run` (or `make bench`) measures and rewrites docs/benchmarks.md.
"""
