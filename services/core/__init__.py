"""The serving core: everything a language service needs except its model.

A language service is a settings class plus a `Backend`; `build_server` hosts it with the
gRPC API, backpressure, cache, health, metrics, tracing and structured logs.
"""
