"""The APIs of clients people already have, as thin front ends on the router's request path:
Google Cloud Speech v1 and NVIDIA Riva ASR over gRPC, the OpenAI audio API over HTTP."""
