"""Jobs the doctor submits as the user: how they are written, and the operator check.

A job is written with the chosen profile's batch script and default options
(or classic mode's ``batch_script`` and ``req_*``), through the same validator
and script checks as a spawn, then submitted once with :class:`FirecrestClient`
under a name unique to the run, with the spawner's safety (see :func:`submit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import states
from ..client import (
    FirecrestClient,
    SubmitRefused,
    SystemNotFound,
    describe,
    is_transient,
    is_unprocessed,
)
from ..profiles.options import OptionError, UserInfo, validate_options, visible_profiles
from ..profiles.script import ScriptRejected, ScriptTemplateError, log_path, render_batch_script
from ..request import ensure_job_name
from .report import Step
from .settings import config_req, job_workdir

if TYPE_CHECKING:
    from .checks import Doctor

log = logging.getLogger(__name__)


@dataclass
class JobPlan:
    """How a doctor job is written for one profile (or classic mode)."""

    url: str
    system: str
    workdir: str
    scheduler: str
    profile: str
    regexes: states.StateRegexes
    render: Callable[[str, str], str]

    def script(self, cmd: str, job_name: str) -> str:
        text = self.render(cmd, job_name)
        return ensure_job_name(text, job_name, self.scheduler)[0]


class PlanError(Exception):
    """A doctor job cannot be written for the chosen profile; the message says why."""


_PLAN_FIX = (
    "choose a profile the user may use whose defaults are valid (--profile ID, --group "
    "for group allow-lists), or fix the profile / batch_script"
)


def classic_regexes(sp: Any) -> states.StateRegexes:
    return states.StateRegexes(
        pending=str(getattr(sp, "state_pending_re", "") or states.StateRegexes().pending),
        running=str(getattr(sp, "state_running_re", "") or states.StateRegexes().running),
        unknown=str(getattr(sp, "state_unknown_re", "") or states.StateRegexes().unknown),
        exechost=str(getattr(sp, "state_exechost_re", "") or states.DEFAULT_EXECHOST_RE),
        exechost_exp=str(getattr(sp, "state_exechost_exp", "") or ""),
    )


def make_plan(doctor: Doctor, profile_id: str = "") -> JobPlan:
    """How to write a job for ``profile_id`` (or the default profile) as the user."""
    user = doctor.options.user
    base = {**config_req(doctor.sp), "username": user}
    if not doctor.settings.profile_mode:
        workdir = job_workdir(doctor.sp, user)
        template = str(doctor.sp.batch_script or "")
        trusted = set(base) - {"username"}

        def render_classic(cmd: str, job_name: str) -> str:
            variables = {**base, "cmd": cmd, "job_name": job_name, "workdir": workdir}
            try:
                return render_batch_script(
                    template, variables, name="batch_script", trusted={*trusted, "cmd"}
                )
            except (ScriptRejected, ScriptTemplateError) as e:
                raise PlanError(f"{doctor.name('batch_script')}: {e}") from None

        return JobPlan(
            url=str(doctor.sp.firecrest_url).rstrip("/"),
            system=str(doctor.sp.req_host),
            workdir=workdir,
            scheduler="slurm",
            profile="",
            regexes=classic_regexes(doctor.sp),
            render=render_classic,
        )
    ps = doctor.profile_set
    assert ps is not None  # noqa: S101
    who = UserInfo(user, tuple(doctor.options.groups))
    visible = visible_profiles(ps, who)
    if profile_id:
        if profile_id not in ps:
            raise PlanError(f"no profile {profile_id!r} (profiles: {', '.join(ps.ids)})")
    elif visible:
        profile_id = next((p.id for p in visible if p.default), visible[0].id)
    else:
        raise PlanError(f"{user} may use no profile (check the profiles' users/groups)")
    try:
        vo = validate_options(ps, {"profile": profile_id}, user=who, cluster=None, base=base)
    except OptionError as e:
        raise PlanError(
            f"profile {profile_id!r} with its defaults, as {user}: {e.field}: {e.message}"
        ) from None
    p = vo.profile
    workdir = job_workdir(doctor.sp, user, p.workdir)

    def render_profile(cmd: str, job_name: str) -> str:
        try:
            return vo.render_script(cmd=cmd, job_name=job_name, workdir=workdir)
        except (OptionError, ScriptRejected, ScriptTemplateError) as e:
            raise PlanError(f"profile {p.id!r}: {e}") from None

    return JobPlan(
        url=str(p.firecrest_url or doctor.sp.firecrest_url).rstrip("/"),
        system=p.system,
        workdir=workdir,
        scheduler=p.scheduler,
        profile=p.id,
        regexes=p.states,
        render=render_profile,
    )


class SubmitNotConfirmed(Exception):
    """An ambiguous submit whose job did not show up under its name in time."""


async def submit(
    doctor: Doctor, plan: JobPlan, cmd: str, job_name: str, env: dict[str, str]
) -> str:
    """Submit a doctor job as the user, once, with the spawner's safety; returns its id.

    One request (:meth:`~firecrestspawner.client.FirecrestClient.submit_once`)
    under ``job_name``, unique to this run and known before the request is
    sent. After an ambiguous failure (timeout, 5xx, dropped connection) the job
    is looked up by that name and adopted if it shows up; it is never submitted
    again, so a name never has two jobs. A submit interrupted in flight
    (Ctrl-C, a deadline) cancels whatever carries the name, then goes on
    being interrupted. A refusal, or a submit FirecREST provably did not act
    on (429, 502, 503), raises as it is.
    """
    from ..jobenv import job_environment

    client = doctor.user_client(plan.url)
    assert client is not None  # noqa: S101
    script = plan.script(cmd, job_name)
    try:
        return await client.submit_once(
            plan.system,
            job_name=job_name,
            workdir=plan.workdir,
            script=script,
            env=job_environment(env),
        )
    except asyncio.CancelledError:
        await cancel_named(client, plan.system, job_name)
        raise
    except Exception as e:
        if (
            not is_transient(e)
            or is_unprocessed(e)
            or isinstance(e, (SubmitRefused, SystemNotFound))
        ):
            raise
        cause = e
    window = client.settings.lookup_grace
    log.warning(
        "Submit of %s failed ambiguously (%s); looking it up by name", job_name, describe(cause)
    )
    try:
        ids = await jobs_named(client, plan.system, job_name, window)
    except asyncio.CancelledError:
        await cancel_named(client, plan.system, job_name)
        raise
    except Exception as e:
        raise SubmitNotConfirmed(
            f"FirecREST did not answer clearly ({describe(cause)}) and could not be asked "
            f"whether job {job_name} exists ({describe(e)}); if it shows up, cancel it "
            f"(scancel --name {job_name})"
        ) from e
    if not ids:
        raise SubmitNotConfirmed(
            f"FirecREST did not answer clearly ({describe(cause)}) and no job named "
            f"{job_name} showed up within {window:.0f} s; if it shows up later, cancel it "
            f"(scancel --name {job_name})"
        )
    if len(ids) > 1:  # cannot happen with one request, but never leave one behind
        for extra in ids[1:]:
            with contextlib.suppress(Exception):
                await client.cancel(plan.system, extra)
    log.info("Adopted job %s (%s) after an ambiguous submit", ids[0], job_name)
    return ids[0]


async def jobs_named(client: FirecrestClient, system: str, name: str, window: float) -> list[str]:
    """Ids of the jobs called ``name``, sorted, looked up until one shows or ``window`` passes.

    A new job may be listed late: one empty answer proves nothing.
    """
    deadline = time.monotonic() + window
    delay = 0.5
    while True:
        found = sorted(str(j["jobId"]) for j in await client.jobs_named(system, name))
        if found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


async def cancel_named(client: FirecrestClient, system: str, name: str) -> None:
    """Cancel whatever carries ``name`` (after an interrupted submit); log what is left.

    Bounded: at most the client's lookup window plus two request timeouts.
    """
    settings = client.settings

    async def cancel_all() -> None:
        for job_id in await jobs_named(client, system, name, settings.lookup_grace):
            await client.cancel(system, job_id)
            log.warning("Cancelled job %s (%s) of an interrupted submit", job_id, name)

    try:
        await asyncio.wait_for(cancel_all(), settings.lookup_grace + 2 * settings.request_timeout)
    except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - the caller goes on
        log.warning(
            "A job named %s may exist after an interrupted submit (%s); cancel it with "
            "scancel --name %s",
            name,
            describe(e),
            name,
        )


async def job_output(doctor: Doctor, plan: JobPlan, job_id: str, job_name: str) -> str:
    """The end of the job's output file ("" when it cannot be read)."""
    client = doctor.user_client(plan.url)
    if client is None:
        return ""
    path = ""
    with contextlib.suppress(Exception):  # fall back to the built-in templates' path
        meta = await client.metadata(plan.system, job_id)
        path = str((meta or {}).get("standardOutput") or "")
    path = path or log_path(plan.workdir, job_name)
    try:
        return await client.tail(plan.system, path, lines=20)
    except Exception:  # noqa: BLE001 - nothing to show
        return ""


async def cancel_quietly(doctor: Doctor, plan: JobPlan, job_id: str) -> None:
    client = doctor.user_client(plan.url)
    if client is None:
        return
    with contextlib.suppress(Exception):  # already ended, or reported by the caller
        await client.cancel(plan.system, job_id)


async def check_operator(doctor: Doctor) -> None:
    title = "Service account cancels other users' jobs"
    sp = doctor.sp
    relied = bool(sp.stop_with_service_account)
    if not (doctor.sa_ok and doctor.user_ok):
        doctor.report.add(
            Step(
                "sa-operator",
                title,
                "skip",
                "needs the service account token and the user credential (--user): "
                "a job of the user is submitted, then cancelled by the service account",
            )
        )
        return
    try:
        plan = make_plan(doctor, doctor.options.profile)
    except PlanError as e:
        doctor.report.add(Step("sa-operator", title, "fail", str(e), _PLAN_FIX))
        return
    if (plan.url, plan.system) not in doctor.healthy:
        doctor.report.add(Step("sa-operator", title, "skip", f"{plan.system} is not healthy"))
        return
    sa = doctor.sa_client(plan.url)
    user = doctor.user_client(plan.url)
    assert sa is not None  # noqa: S101
    assert user is not None  # noqa: S101
    job_name = f"fcs-doctor.{doctor.nonce}.rights"
    try:
        job_id = await submit(doctor, plan, "sleep 300", job_name, {})
    except Exception as e:  # noqa: BLE001 - reported
        doctor.report.add(
            Step(
                "sa-operator",
                title,
                "fail",
                f"could not submit a test job as {doctor.options.user} on {plan.system}: "
                f"{describe(e)}",
                _PLAN_FIX,
            )
        )
        return
    lines = [f"submitted job {job_id} ({job_name}) as {doctor.options.user} on {plan.system}"]
    try:
        seen = await _sa_sees(sa, plan.system, job_id)
        if not seen:
            doctor.report.add(
                Step(
                    "sa-operator",
                    title,
                    "fail",
                    "\n".join(
                        [*lines, "the service account's all-users job list does not show it"]
                    ),
                    "the service account must see every user's jobs: with Slurm's "
                    "PrivateData=jobs it must be an operator or administrator "
                    f"(sacctmgr modify user {_sa_name(doctor, plan.system)} set "
                    "adminlevel=operator)",
                )
            )
            return
        lines.append("the service account lists it among all users' jobs")
        refused = await _sa_cancel(sa, user, plan.system, job_id)
    finally:
        await cancel_quietly(doctor, plan, job_id)
    if refused is None:
        lines.append("the service account cancelled it")
        doctor.report.add(Step("sa-operator", title, "pass", "\n".join(lines)))
        return
    lines.append(f"the service account could not cancel it: {refused}")
    why = (
        f"{doctor.name('stop_with_service_account')} is on: the hub cancels jobs of users "
        "whose login expired with it (and `firecrestspawner reap` needs it too)"
    )
    doctor.report.add(
        Step(
            "sa-operator",
            title,
            "fail" if relied else "warn",
            "\n".join([*lines, why if relied else "stop_with_service_account is off"]),
            "make the service account's cluster account a scheduler operator "
            f"(Slurm: sacctmgr modify user {_sa_name(doctor, plan.system)} set "
            "adminlevel=operator)"
            + (
                ""
                if not relied
                else f", or set {doctor.name('stop_with_service_account')} "
                "= False (then an expired login cannot stop its server)"
            ),
        )
    )


def _sa_name(doctor: Doctor, system: str) -> str:
    return doctor.sa_unix_user.get(system) or "<service account>"


async def _sa_sees(sa: FirecrestClient, system: str, job_id: str) -> bool:
    deadline = time.monotonic() + 15
    while True:
        jobs = await sa.jobs(system, allusers=True)
        if any(str(j.get("jobId")) == job_id for j in jobs):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(1.0)


async def _sa_cancel(
    sa: FirecrestClient, user: FirecrestClient, system: str, job_id: str
) -> str | None:
    """None when the service account's cancel ended the job, else why not."""
    from ..client import CancelNotAccepted

    try:
        await sa.cancel(system, job_id)
    except CancelNotAccepted as e:
        return e.message
    except Exception as e:  # noqa: BLE001 - reported
        return describe(e)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = await user.job(system, job_id)
        if job is None or states.is_gone(states.state_of(job)):
            return None
        await asyncio.sleep(1.0)
    return "the job was still there 30 s after the cancel was accepted"


__all__ = [
    "JobPlan",
    "PlanError",
    "SubmitNotConfirmed",
    "cancel_named",
    "cancel_quietly",
    "check_operator",
    "classic_regexes",
    "job_output",
    "jobs_named",
    "make_plan",
    "submit",
]
