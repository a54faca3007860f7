"""Who a call on the router is for: the tenant of the API key it shows, when the router has a
keys file (`ROUTER_API_KEYS_FILE`), else the tenant its `x-tenant-id` names, else the default
tenant. The router's call scope asks this for every call, of every API, before serving it.

A call without a key, or with one the file does not hold, is UNAUTHENTICATED; one whose
`x-tenant-id` names another tenant than its key's is PERMISSION_DENIED. Keys are never logged
nor shown in an error.
"""

from __future__ import annotations

from services.core.calls import Incoming
from services.core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from services.core.tenants import DEFAULT_TENANT, TENANT_RULE, is_tenant
from services.router.keys import ApiKeys, bearer


class RouterAdmission:
    def __init__(self, keys: ApiKeys | None, tenant_header: str):
        self._keys = keys
        self._header = tenant_header

    def tenant(self, incoming: Incoming) -> str:
        named = self._named(incoming.metadata)
        if self._keys is None:
            return named or DEFAULT_TENANT
        key = bearer(incoming.metadata)
        if key is None:
            raise Unauthenticated(
                "this router needs an API key: send it as `authorization: Bearer KEY`"
            )
        tenant = self._keys.tenant(key)
        if tenant is None:
            raise Unauthenticated("the API key is not one this router knows")
        if named is not None and named != tenant:
            raise PermissionDenied(
                f"{self._header} names tenant {named!r}, but the API key is tenant {tenant!r}'s"
            )
        return tenant

    def _named(self, metadata: tuple[tuple[str, str], ...]) -> str | None:
        sent = next((v for k, v in metadata if k == self._header), "")
        if not sent:
            return None
        if not is_tenant(sent):
            raise InvalidArgument(f"{self._header} must be {TENANT_RULE}")
        return sent
