"""Visibility by cluster identity against the real FirecREST 2.5.6 (#14.1).

The accounts and Unix groups an allow-list checks are what the real server's
userinfo says (``sacctmgr`` and ``id`` over SSH as the user), read through the
same cache and client as every other cluster list.
"""

from __future__ import annotations

import grp
import pwd

import pytest

from firecrestspawner.cluster import ClusterCache, PooledStatusClient
from firecrestspawner.profiles.identity import from_choices

pytestmark = pytest.mark.real_firecrest

ALICE = "fsp-alice"


async def test_identity_is_the_users_slurm_accounts_and_unix_groups(client_for, real_firecrest):
    cache = ClusterCache()

    async def factory() -> PooledStatusClient:
        return PooledStatusClient(client_for(ALICE))

    result = await cache.get(
        factory,
        firecrest_url=real_firecrest.url,
        system=real_firecrest.system,
        source="identity",
        user=ALICE,
        timeout=30,
    )
    assert result.origin == "live", result.note
    ident = from_choices(result)
    assert ident.known
    assert ident.accounts == {"proj-a", "proj-b"}
    pw = pwd.getpwnam(ALICE)
    expected = {grp.getgrgid(pw.pw_gid).gr_name}
    expected |= {g.gr_name for g in grp.getgrall() if ALICE in g.gr_mem}
    assert ident.unix_groups == expected
