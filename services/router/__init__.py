"""The router: one stt.v1.Speech endpoint for every language, sending each request to the
language service for its language, with failover, health and aggregated telemetry."""
