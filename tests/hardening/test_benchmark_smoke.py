"""``benchmarks/hostile_regex.py`` still runs: a short pass with few clients, no times asserted."""

from __future__ import annotations

import pytest

from benchmarks import hostile_regex

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("path", ["link", "rest"])
def test_hostile_regex_benchmark_runs(path: str) -> None:
    result = hostile_regex.run(seconds=2, concurrency=3, path=path)
    assert result["hostile_requests"] > 0
    assert result["hostile_status_codes"] == [400]
    assert result["under_load"]["samples"] > 0
    assert result["control"]["samples"] > 0
