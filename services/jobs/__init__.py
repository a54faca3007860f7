"""Long audio as durable jobs: the job store (SQLite file or PostgreSQL) that the router's
LongRunningRecognize and Operations use, and the workers (`services.jobs.worker`) that claim
jobs with a lease and transcribe them in chunks through the router."""
