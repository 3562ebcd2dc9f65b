"""``benchmarks/hostile_regex.py`` still runs: a short pass with few clients, no times asserted."""

from __future__ import annotations

import pytest

from benchmarks import hostile_regex

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    ("path", "floor"),
    # The floor phases (clients on /hub/health and /hub/home) do not depend on the
    # path: they run once, with the link pass.
    [("link", True), ("rest", False)],
    ids=["link", "rest"],
)
def test_hostile_regex_benchmark_runs(path: str, floor: bool) -> None:
    result = hostile_regex.run(seconds=1, concurrency=3, path=path, floor=floor)
    assert result["hostile_requests"] > 0
    assert result["hostile_status_codes"] == [400]
    assert result["under_load"]["samples"] > 0
    assert result["control"]["samples"] > 0
    if floor:
        floors = [result["phases"][name] for name in ("floor_health", "floor_home")]
        assert all(p["health"]["samples"] > 0 and p["load"]["requests"] > 0 for p in floors)
        assert all(p["load"]["status_codes"] == [200] for p in floors)
