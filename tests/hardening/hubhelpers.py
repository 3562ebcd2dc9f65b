"""What the two hub-level hostile-value tests share: the corpus sample and the job's script.

Why the hub tier samples: every value of the corpus already goes through the
validator and the script check in the hub-less tests (``test_hostile_values.py``,
``test_expert_hostile.py`` with the dependent time limit too,
``test_directive_injection.py``; the last two also through real ``sbatch``),
which is the same code the hub runs. What the hub adds
is the path a value takes to that code: JSON, form and query-string decoding,
saved options, the error page. Those paths care about the class of a value
(control character, line separator, quote, long string, directive-like word),
not about each of the hundreds of random joins, so each path gets every class
of the corpus at least once (see :func:`hub_sample`), not every value: a full
spawn request per value costs about 35 database queries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx

from .corpus import hostile_corpus

T = TypeVar("T")

_CLASSES: dict[str, set[str]] = {}
for _value, _classes in hostile_corpus():
    _CLASSES.setdefault(_value, set()).update(_classes)


def classes_of(value: str) -> frozenset[str]:
    """The corpus classes ``value`` represents (a value can be both special and a join)."""
    return frozenset(_CLASSES[value])


def hub_sample(items: Iterable[T], value_of: Callable[[T], str] = str) -> list[T]:
    """A deterministic subset of ``items`` with every corpus class among them at least once.

    ``value_of`` gives the corpus value of an item (for items built from one,
    such as ``--comment=<value>``). Greedy: the item that adds the most classes
    not yet represented, the earliest on a tie; the sample keeps the input order.
    """
    items = list(items)
    classes = [classes_of(value_of(item)) for item in items]
    wanted = frozenset().union(*classes)
    chosen: set[int] = set()
    covered: set[str] = set()
    while covered != wanted:
        best = max(range(len(items)), key=lambda i: (len(classes[i] - covered), -i))
        chosen.add(best)
        covered |= classes[best]
    sample = [items[i] for i in sorted(chosen)]
    assert frozenset().union(*(classes_of(value_of(i)) for i in sample)) == wanted
    return sample


def json_ok(value: Any) -> bool:
    """Whether ``value`` can be sent as JSON (``float('nan')`` and the like cannot)."""
    try:
        json.dumps(value)
    except ValueError:
        return False
    return True


def submitted_script(emu: Any, user: str, job_id: str) -> str:
    """The script FirecREST received (its job metadata endpoint, as the user)."""
    token = emu.admin.issue_access_token(user)
    r = httpx.get(
        f"{emu.url}/compute/cluster/jobs/{job_id}/metadata",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    r.raise_for_status()
    body = r.json()
    jobs = body.get("jobs") if isinstance(body, dict) else body
    return (jobs[0] if isinstance(jobs, list) else body)["script"]
