"""Long audio as durable jobs: LongRunningRecognize accepts a job into a store (SQLite file or
PostgreSQL), workers claim it with a lease, transcribe it in chunks through the router, and
the google.longrunning Operations service reports on it."""
