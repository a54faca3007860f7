"""Jobs are private to their tenant, with or without API keys: every Operations rpc on another
tenant's job answers NOT_FOUND exactly as for a name that does not exist, and changes nothing;
ListOperations lists the caller's jobs only; a call naming no tenant is the default tenant's.
A router with a job store and no worker (the jobs stay queued) on 127.0.0.1."""

from __future__ import annotations

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from services.jobs.store import QUEUED
from tests.jobs_support import router_settings, submit
from tests.security_support import bearer, keys_file
from tests.support import encode, running_router, tone
from tests.test_router import unused_port

AUDIO = encode(tone(2.0), 16_000, "wav", "pcm_s16le")


def tenant(name: str) -> tuple[tuple[str, str], ...]:
    return (("x-tenant-id", name),)


def rpcs(name: str):
    """Every Operations rpc that names one job, with its request."""
    return {
        "GetOperation": operations_pb2.GetOperationRequest(name=name),
        "WaitOperation": operations_pb2.WaitOperationRequest(name=name, timeout={"seconds": 0}),
        "CancelOperation": operations_pb2.CancelOperationRequest(name=name),
        "DeleteOperation": operations_pb2.DeleteOperationRequest(name=name),
    }


def refusal(operations, method: str, message, metadata) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        getattr(operations, method)(message, metadata=metadata, timeout=10)
    return refused.value.code(), refused.value.details()


def listed(operations, metadata) -> list[str]:
    page = operations.ListOperations(
        operations_pb2.ListOperationsRequest(name="operations"), metadata=metadata, timeout=10
    )
    return [op.name for op in page.operations]


def check_isolation(router, owner, other, nobody=()) -> None:
    """`other` cannot see, wait for, cancel or delete `owner`'s job; `owner` still can."""
    operations = operations_pb2_grpc.OperationsStub(router.channel)
    theirs = submit(router, AUDIO, metadata=owner, language_code="en").name
    unknown = "f" * 32
    for method in rpcs(theirs):
        code, message = refusal(operations, method, rpcs(theirs)[method], other)
        unknown_code, unknown_message = refusal(operations, method, rpcs(unknown)[method], other)
        assert code is unknown_code is grpc.StatusCode.NOT_FOUND, method
        assert message == unknown_message.replace(unknown, theirs), method
        # Nor does a call that names no tenant (the default tenant's) find it.
        assert refusal(operations, method, rpcs(theirs)[method], nobody)[0] is code, method
    job = router.server.store.get(theirs)
    assert job is not None and job.state == QUEUED, "another tenant's calls changed the job"
    assert router.server.store.audio(theirs) is not None, "its audio was dropped"
    assert theirs in listed(operations, owner)
    assert theirs not in listed(operations, other) and theirs not in listed(operations, nobody)
    assert operations.GetOperation(rpcs(theirs)["GetOperation"], metadata=owner, timeout=10)
    operations.CancelOperation(rpcs(theirs)["CancelOperation"], metadata=owner, timeout=10)
    assert router.server.store.get(theirs).state == "CANCELLED"
    operations.DeleteOperation(rpcs(theirs)["DeleteOperation"], metadata=owner, timeout=10)
    assert router.server.store.get(theirs) is None


def test_jobs_are_their_tenant_s_by_the_tenant_header(tmp_path):
    settings = router_settings(f"127.0.0.1:{unused_port()}", data_dir=tmp_path)
    with running_router(settings) as router:
        check_isolation(router, tenant("team-a"), tenant("team-b"))
        # The default tenant's jobs are its own too: a named tenant does not see them.
        check_isolation(router, (), tenant("team-b"), nobody=tenant("team-a"))
        operations = operations_pb2_grpc.OperationsStub(router.channel)
        mine = submit(router, AUDIO, language_code="en").name
        named = submit(router, AUDIO, metadata=tenant("team-a"), language_code="en").name
        assert listed(operations, ()) == [mine], "a call naming no tenant lists the default's"
        assert listed(operations, tenant("default")) == [mine]
        assert listed(operations, tenant("team-a")) == [named]


def test_jobs_are_their_key_s_tenant_s(tmp_path):
    keys = keys_file(tmp_path / "keys", "team-a", "team-b")
    settings = router_settings(
        f"127.0.0.1:{unused_port()}", data_dir=tmp_path, api_keys_file=tmp_path / "keys"
    )
    with running_router(settings) as router:
        a, b = bearer(keys["team-a"]), bearer(keys["team-b"])
        check_isolation(router, a, b, nobody=(*b, ("x-tenant-id", "team-b")))
        operations = operations_pb2_grpc.OperationsStub(router.channel)
        theirs = submit(router, AUDIO, metadata=a, language_code="en").name
        # Naming the owner's tenant with another key is refused outright.
        code, _ = refusal(
            operations, "GetOperation", rpcs(theirs)["GetOperation"], (*b, *tenant("team-a"))
        )
        assert code is grpc.StatusCode.PERMISSION_DENIED
        code, _ = refusal(operations, "GetOperation", rpcs(theirs)["GetOperation"], ())
        assert code is grpc.StatusCode.UNAUTHENTICATED
        assert router.server.store.get(theirs).tenant == "team-a"
