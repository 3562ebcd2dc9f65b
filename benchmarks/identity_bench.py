"""Cost of visibility by cluster identity and of multi-system profiles in the one validator.

``python -m benchmarks.identity_bench`` times, on the files of ``profiles/examples/``:
the visible profiles of a user with a cluster identity, ``validate_options`` of the
same profile for a user with and without one (the allow-list checks are the only
difference), a multi-system profile on a chosen system and a single-system one. The
FirecREST userinfo read itself is cached per system and user (``cluster_identity_ttl``)
and not part of these figures. Best of 3 runs of ``--number`` calls each.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from pathlib import Path

from firecrestspawner.profiles import load_profile_file
from firecrestspawner.profiles.identity import ClusterIdentity
from firecrestspawner.profiles.options import (
    UserInfo,
    cluster_lists,
    validate_options,
    visible_profiles,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "profiles" / "examples"


def cases() -> list[tuple[str, Callable[[], object]]]:
    site = load_profile_file(EXAMPLES / "project-site.yaml")
    centre = load_profile_file(EXAMPLES / "gpu-centre.yaml")
    held = ClusterIdentity("hpc", frozenset({"g152", "bigmem-2026"}), frozenset({"hpcstaff"}))
    ident = UserInfo("ada", (), (held,))
    plain = UserInfo("ada", ("admins",))
    hpc = cluster_lists({"hpc": {"accounts": ["g152"]}})
    gpu = cluster_lists({"daint": {"accounts": ["g152"]}, "santis": {"accounts": ["g152"]}})
    eiger = cluster_lists({"eiger": {"accounts": ["g152"], "partitions": ["normal"]}})
    shared = {"profile": "ps-standard", "partition": "shared"}
    return [
        (
            "visible profiles, project site, user with identity",
            lambda: visible_profiles(site, ident),
        ),
        (
            "validate ps-standard, choice restricted by account",
            lambda: validate_options(
                site, {"profile": "ps-standard", "partition": "priority"}, user=ident, cluster=hpc
            ),
        ),
        (
            "validate ps-standard, user with identity",
            lambda: validate_options(site, shared, user=ident, cluster=hpc),
        ),
        (
            "validate ps-standard, user without identity",
            lambda: validate_options(site, shared, user=plain, cluster=hpc),
        ),
        (
            "validate gc-gpu on santis (multi-system)",
            lambda: validate_options(
                centre, {"profile": "gc-gpu", "system": "santis"}, user=plain, cluster=gpu
            ),
        ),
        (
            "validate gc-cpu (one system)",
            lambda: validate_options(centre, {"profile": "gc-cpu"}, user=plain, cluster=eiger),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    for name, call in cases():
        best = min(timeit.repeat(call, number=args.number, repeat=3)) / args.number
        print(f"{name}: {best * 1e6:.0f} us")


if __name__ == "__main__":
    main()
