"""The router's job front ends: LongRunningRecognize intake (checks, quota, the job into the
store) and the google.longrunning Operations service that reports on the jobs."""
