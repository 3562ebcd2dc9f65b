"""The GPU request names of a profile: GPUs per node and per job are not confused (pure, #14.5).

Called by :mod:`.checks` with its checker (``c.add``/``c.warn`` at a path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import models as m


def _gpu_names(
    spec: m.ProfileFile, p: m.ProfileSpec, parts: list[Any], sys_index: int | None
) -> dict[str, tuple[list[Any], str | None]]:
    """The GPU request names a profile sets, each with where (parts, key) it is first set."""
    found: dict[str, tuple[list[Any], str | None]] = {}
    places: list[tuple[list[Any], Mapping[str, Any]]] = [(["defaults"], spec.defaults)]
    if sys_index is not None:
        places.append((["systems", sys_index, "req"], spec.systems[sys_index].req))
    places.append(([*parts, "req"], p.req))
    for j, opt in enumerate(p.options):
        oparts = [*parts, "options", j]
        found.setdefault(opt.req_name, ([*oparts, "req" if opt.req else "id"], None))
        if isinstance(opt, m.ChoiceOption):
            for key, choice in opt.choices.items():
                places.append(([*oparts, "choices", key, "req"], choice.req))
    for where, req in places:
        for name in req:
            found.setdefault(name, (where, name))
    return {k: v for k, v in found.items() if k in ("ngpus", "gpus", "gpus_per_node")}


def check_gpu_names(
    c: Any,
    spec: m.ProfileFile,
    p: m.ProfileSpec,
    parts: list[Any],
    sys_index: int | None,
    scheduler: str,
) -> None:
    """GPUs per node (``gpus_per_node``) and per job (``gpus``) are not confused (#14.5)."""
    names = _gpu_names(spec, p, parts, sys_index)
    if "ngpus" in names:
        where, key = names["ngpus"]
        c.warn(
            where,
            "`ngpus` does not say whether it counts GPUs per node or per job (the built-in "
            "templates read it as before: Slurm `--gpus`, for the whole job; PBS `select` "
            ":ngpus=, per node)",
            "write `gpus_per_node` (GPUs on each node: Slurm --gpus-per-node, PBS :ngpus=) "
            "or `gpus` (GPUs of the whole job: Slurm --gpus)",
        )
    if "gpus" in names and scheduler == "pbs":
        where, key = names["gpus"]
        c.add(
            where,
            "`gpus` (GPUs of the whole job) cannot be asked for in a PBS `select`: "
            "PBS counts GPUs per chunk (node)",
            "write `gpus_per_node`",
            key=key,
        )
    elif "gpus" in names and "gpus_per_node" in names:
        where, key = names["gpus"]
        c.add(
            where,
            "both `gpus` (per job) and `gpus_per_node` are set; the built-in template asks one",
            "keep `gpus_per_node` for whole nodes' GPUs, or `gpus` for a total",
            key=key,
        )


__all__ = ["check_gpu_names"]
