"""Names, headers and limits that more than one package relies on, in one place: the gRPC
services every server speaks or calls, the metadata keys that travel with a request, and the
message-size rule that keeps a service's audio limit and its transport limit in step.

Importing this module loads only the generated stt.v1 messages, so a client or a settings
class may use it without pulling in a server.
"""

from __future__ import annotations

from google.longrunning import operations_pb2
from grpc_health.v1 import health_pb2
from stt.v1 import stt_pb2

SPEECH_SERVICE = stt_pb2.DESCRIPTOR.services_by_name["Speech"].full_name
DIARIZATION_SERVICE = stt_pb2.DESCRIPTOR.services_by_name["Diarization"].full_name
OPERATIONS_SERVICE = operations_pb2.DESCRIPTOR.services_by_name["Operations"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

# Metadata (gRPC) and headers (HTTP), in lower case as both arrive.
REQUEST_ID_HEADER = "x-request-id"
TENANT_HEADER = "x-tenant-id"
RETRY_PUSHBACK_HEADER = "grpc-retry-pushback-ms"
# Trailing metadata of the drop-in APIs' answers: the service and model that served the call
# (their messages have no field for it).
SERVICE_HEADER = "x-stt-service"
MODEL_HEADER = "x-stt-model"

MIB = 1024 * 1024
# The language services' audio limit unless configured: what the router and the OpenAI API
# take by default is derived from it, so that they accept whatever the services accept.
DEFAULT_MAX_AUDIO_BYTES = 64 * MIB
# The longest job audio: what the router accepts, the workers read and diarization hears.
JOB_MAX_AUDIO_SECONDS = 4 * 3600.0
# Room in a message for its config and framing beside the audio.
MESSAGE_HEADROOM_BYTES = MIB

# Servers refuse (GOAWAY "too many pings") pings more frequent than this; the router pings its
# backends' idle connections no more often, to find dead ones.
MIN_PING_INTERVAL_S = 10.0


def message_limit(max_audio_bytes: int) -> int:
    """The transport's limit for a server whose audio limit is `max_audio_bytes`: twice it,
    plus headroom, so a clip somewhat over the limit gets the service's own precise
    INVALID_ARGUMENT, and only a far larger message meets gRPC's RESOURCE_EXHAUSTED before it
    is read into memory."""
    return 2 * max_audio_bytes + MESSAGE_HEADROOM_BYTES
