"""Tenants: what a tenant's name may be (the name a job is charged to, `x-tenant-id`, and the
name an API key stands for in the router's keys file), the tenant of a call that names none,
and each tenant's fair share of a server's calls in flight."""

from __future__ import annotations

import re
from collections import Counter

from services.core.errors import TenantBusy

TENANT = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
TENANT_RULE = "1 to 128 characters of A-Za-z0-9._:@-"
DEFAULT_TENANT = "default"
# The calls that hold a backend's capacity while in flight, the ones a share counts; calls
# about jobs (a WaitOperation may wait a minute) and descriptions of the server do not.
SHARED_METHODS = frozenset({"Recognize", "StreamingRecognize", "DetectLanguage", "Diarize"})
# A tenant at its share may try again about this much later (one short inference).
SHARE_RETRY_S = 1.0


def is_tenant(name: str) -> bool:
    return TENANT.match(name) is not None


class TenantShares:
    """The calls each tenant has in flight, each tenant held to `max_in_flight` of them, so
    one that floods the server is refused while the others are served."""

    def __init__(self, max_in_flight: int, setting: str):
        self.max_in_flight = max_in_flight
        self._setting = setting  # the variable that sets the share, named in refusals
        self._in_flight: Counter[str] = Counter()

    def take(self, tenant: str) -> None:
        """Counts one more call of `tenant`; raises TenantBusy when it has its share."""
        if self._in_flight[tenant] >= self.max_in_flight:
            raise TenantBusy(
                f"tenant {tenant!r} has {self.max_in_flight} calls in flight, its share "
                f"({self._setting}); retry when one has ended",
                subject=f"tenant:{tenant}",
                retry_after_s=SHARE_RETRY_S,
            )
        self._in_flight[tenant] += 1

    def give_back(self, tenant: str) -> None:
        self._in_flight[tenant] -= 1
        if not self._in_flight[tenant]:
            del self._in_flight[tenant]

    def in_flight(self, tenant: str) -> int:
        return self._in_flight[tenant]
