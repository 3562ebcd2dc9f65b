"""Node names: does the host the hub would connect to resolve, for each node FirecREST lists."""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from functools import partial
from typing import TYPE_CHECKING

from .. import states
from ..client import describe
from .jobs import classic_regexes
from .report import Step

if TYPE_CHECKING:
    from .checks import Doctor, Target


async def check_node_names(doctor: Doctor) -> None:
    title = "Node names resolve from this host"
    lines, problems, fixes = [], [], []
    checked = False
    for t in doctor.targets:
        if (t.url, t.system) not in doctor.healthy:
            continue
        client = doctor.any_client(t.url)
        if client is None:
            continue
        checked = True
        try:
            nodes = await client.read("nodes", partial(client.raw.nodes, t.system))
        except Exception as e:  # noqa: BLE001 - reported
            problems.append(f"{t.system}: cannot list nodes: {describe(e)}")
            continue
        names = [str(n.get("name")) for n in nodes if isinstance(n, dict) and n.get("name")]
        if not names:
            problems.append(f"{t.system}: FirecREST lists no nodes")
            continue
        sample = names[: max(1, doctor.options.max_nodes)]
        regexes = _regexes_for(doctor, t)
        results = await asyncio.gather(*(_resolve_node(doctor, n, regexes) for n in sample))
        bad = [(n, h, why) for n, h, why in results if why]
        if bad:
            shown = "; ".join(f"{n} -> {h or '(empty)'}: {why}" for n, h, why in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            problems.append(
                f"{t.system}: {len(bad)} of {len(sample)} node(s) do not resolve: {shown}{more}"
            )
            fixes.append(_node_fix(doctor, bad[0]))
        else:
            n, h, _ = results[0]
            lines.append(
                f"{t.system}: {len(sample)} of {len(names)} node(s) resolve (e.g. {n} -> {h})"
            )
    if problems:
        doctor.report.add(
            Step(
                "node-names",
                title,
                "fail",
                "\n".join([*lines, *problems]),
                "\n".join(dict.fromkeys(fixes)),
            )
        )
    elif checked:
        doctor.report.add(Step("node-names", title, "pass", "\n".join(lines)))
    else:
        doctor.report.add(
            Step("node-names", title, "skip", "needs a healthy system and a credential")
        )


def _regexes_for(doctor: Doctor, t: Target) -> states.StateRegexes:
    if doctor.profile_set is not None and t.profiles:
        profile = doctor.profile_set.get(t.profiles[0])
        if profile is not None:
            return profile.states
    return classic_regexes(doctor.sp)


def _node_fix(doctor: Doctor, bad: tuple[str, str, str]) -> str:
    node, host, _ = bad
    if getattr(doctor.sp, "custom_state_gethost", None):
        return (
            f"{doctor.name('custom_state_gethost')} must return a name or address of the "
            "job's node that this host (where the proxy runs) resolves"
        )
    template = str(getattr(doctor.sp, "node_name_template", "") or "")
    if template:
        return (
            f"set {doctor.name('node_name_template')} so that "
            f"{template!r}.format(node) is a name the proxy's host resolves "
            f"(now {node!r} -> {host!r}); or empty to use the node name as it is"
        )
    return (
        f"set {doctor.name('node_name_template')} (e.g. '{{}}.cluster.example.org') so "
        f"that the node name ({node!r}) becomes a name the proxy's host resolves, or "
        "add the nodes to DNS / /etc/hosts"
    )


async def gethost(
    doctor: Doctor, node: str, regexes: states.StateRegexes, job: dict | None = None
) -> str:
    """The host the hub would connect to for a job on ``node`` (the spawner's rule)."""
    hook = getattr(doctor.sp, "custom_state_gethost", None)
    job_status = states.job_status_string("RUNNING", node)
    if hook:
        stand_in = types.SimpleNamespace(
            job_status=job_status,
            job=job or {"jobId": "0", "nodes": node, "status": {"state": "RUNNING"}},
            job_id=str((job or {}).get("jobId") or "0"),
            user=types.SimpleNamespace(name=doctor.options.user or "doctor"),
            node_name_template=getattr(doctor.sp, "node_name_template", ""),
            log=logging.getLogger("firecrestspawner.doctor"),
        )
        result = hook(stand_in)
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, doctor.options.timeout)
        return str(result or "").strip()
    found = states.gethost(job_status, regexes.exechost, regexes.exechost_exp)
    template = str(getattr(doctor.sp, "node_name_template", "") or "")
    if not found:
        return ""
    return template.format(found) if template else found


async def _resolve_node(
    doctor: Doctor, node: str, regexes: states.StateRegexes
) -> tuple[str, str, str]:
    try:
        host = await gethost(doctor, node, regexes)
    except Exception as e:  # noqa: BLE001 - a site hook or a bad template
        return node, "", f"{type(e).__name__}: {e}"
    if not host:
        return node, "", "no host (check state_exechost_re)"
    why = await resolve(host, doctor.options.timeout)
    return node, host, why


async def resolve(host: str, timeout: float) -> str:
    """ "" when ``host`` resolves (a bounded ``getaddrinfo``), else why not."""
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(host, None), timeout)
    except asyncio.TimeoutError:
        return f"no answer from the resolver within {timeout:g} s"
    except OSError as e:
        return f"does not resolve ({e.strerror or e})"
    return ""


__all__ = ["check_node_names", "gethost", "resolve"]
