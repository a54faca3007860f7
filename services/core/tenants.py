"""What a tenant's name may be: the name a job is charged to (`x-tenant-id`) and the name an
API key stands for (the router's keys file)."""

from __future__ import annotations

import re

TENANT = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
TENANT_RULE = "1 to 128 characters of A-Za-z0-9._:@-"


def is_tenant(name: str) -> bool:
    return TENANT.match(name) is not None
