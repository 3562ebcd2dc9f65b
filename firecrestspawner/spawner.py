"""The documented spawner classes: traits and the life cycle's orchestration.

``FirecRESTSpawnerBase`` runs each single-user server as a batch job submitted
through FirecREST v2. It orchestrates; the work is done by what it holds:

* :mod:`~firecrestspawner.spawner_traits` and :mod:`~firecrestspawner.profile_mode`
  declare the configurable traits;
* :class:`~firecrestspawner.job_record.JobRecord` is the spawn's job (the state
  JupyterHub stores, one reset);
* :class:`~firecrestspawner.job_control.JobController` submits, waits, cancels
  and cleans up (no traitlets; built per operation from the traits);
* :class:`~firecrestspawner.profile_mode.ProfileMode` (profile mode) and
  :mod:`~firecrestspawner.request` build the frozen spawn request.

This module is also the one place of compatibility: the documented classes
(``FirecRESTSpawnerBase``, ``FirecRESTSpawnerRegexStates``, ``SlurmSpawner``,
``JobStatus``, ``AuthorizationCodeFlowAuth``, ``format_template``) are
imported from here, and importing it registers the port-only hub API handler
(``POST /hub/api/firecrestspawner``), as the existing firecrestspawner did;
it is the package's one import side effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Mapping
from typing import Any

from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from traitlets import default

from . import client as fc
from . import naming, states
from .auth import AuthorizationCodeFlowAuth, get_service_account_auth, user_auth
from .errors import spawn_error
from .handlers import PortReporting, PortWaiter, register_api_handler
from .jobs import JobAccess, JobController, JobRecord, JobSettings, ProgressLog, client_settings
from .logs import attach_to_hub_log
from .profile_mode import ProfileContext, ProfileMode, ProfileModeTraits
from .profiles.options import OptionError, UserInfo
from .profiles.script import format_template
from .pyfirecrest_adapter import tls_ready
from .redact import register_secret
from .remaining import RemainingTime
from .request import (
    ClassicOptionError,
    SpawnRequest,
    StateRegexes,
    classic_request,
    classic_user_variables,
    format_command,
)
from .spawner_traits import FirecRESTSpawnerTraits
from .states import JobStatus
from .submission import (
    TOKEN_FILE_VAR,
    check_command,
    job_env,
    option_error,
    render_script,
    system_error,
)


class FirecRESTSpawnerBase(
    PortReporting, RemainingTime, FirecRESTSpawnerTraits, ProfileModeTraits, Spawner
):
    """Base class for spawners using PyFirecrest to submit jobs.

    All ``req_xyz`` traits are available as ``xyz`` in the batch script.
    """

    #: The job controller's class (benchmarks swap in one without the shared cache).
    controller_class: type[JobController] = JobController

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The package's records (client, auth, status) go through the hub's
        # logger and format, redacted at that one boundary.
        attach_to_hub_log(self.log)
        #: The current spawn's job: the state JupyterHub stores, and more.
        self.record = JobRecord()
        #: The current spawn's request (set by ``start()``, read by ``submit_batch_script()``).
        self.spawn_request: SpawnRequest | None = None
        #: The rendezvous with the port handler while ``start()`` waits for a port.
        self.port_waiter: PortWaiter | None = None
        self._progress = ProgressLog()
        #: The state came from the database with a job that never reported a port.
        self._loaded_unstarted = False
        #: Clean-up of a cancelled start, awaited by the next stop().
        self._cleanup: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ compatibility

    @property
    def job_id(self) -> str:
        """Id of the batch job of the current spawn (state)."""
        return self.record.job_id

    @job_id.setter
    def job_id(self, value: str) -> None:
        self.record.job_id = str(value or "")

    @property
    def job_status(self) -> str:
        """Last known ``"<STATE> <nodes>"`` of the job, matched by the state regexes."""
        return self.record.job_status

    @job_status.setter
    def job_status(self, value: str) -> None:
        self.record.job_status = str(value or "")

    @property
    def job(self) -> dict[str, Any]:
        """The job as FirecREST last reported it, for site hooks.

        The existing firecrestspawner kept its submit answer here; hooks such
        as a ``custom_state_gethost`` read ``job["jobId"]`` and
        ``job["job_file_out"]`` (the job's output file, a FirecREST v1 name).
        """
        job = dict(self.record.job or {})
        if self.job_id:
            job.setdefault("jobId", self.job_id)
        if self.record.log_path:
            job.setdefault("job_file_out", self.record.log_path)
        return job

    @property
    def host(self) -> str:
        """The FirecREST system of the job (``req_host`` or the profile's), for site hooks."""
        return self.record.system or self.req_host

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # Tells JupyterHub that user_options are handled (no "unhandled" warning)
        # and refuses bad classic-mode options before the spawn starts.
        return _check_user_options

    # ------------------------------------------------------------ state

    def get_state(self) -> dict:
        """Add job id, system and what poll/stop need after a hub restart."""
        state = super().get_state()
        state.update(self.record.to_state())
        return state

    def load_state(self, state: dict) -> None:
        """Load job id and friends; old states with only job_id/job_status work."""
        super().load_state(state)
        self.record = JobRecord.from_state(state)
        self.record.system = self.record.system or self.req_host
        self.record.firecrest_url = self.record.firecrest_url or self.firecrest_url
        self.record.regexes = self._state_regexes()
        if self.profiles_dir and self.record.profile:
            regexes = self._profile_mode().state_regexes(self.record.profile, self.record.system)
            if regexes is not None:
                self.record.regexes = regexes
        r = self.record
        self._loaded_unstarted = bool(
            (r.job_id and r.submitted_at and not r.port) or (r.submit_unknown and r.job_name)
        )

    def clear_state(self) -> None:
        """Clear the job state (the hub calls this at spawn start and after stop).

        Jobs whose cancellation failed are kept (``orphans``) and cancelled
        again at the next start and stop, since the hub clears the state even
        when ``stop()`` failed; so is a job not known to have ended and a name
        a lost submit may have used.
        """
        super().clear_state()
        self.record.reset()
        self._loaded_unstarted = False

    # ------------------------------------------------------------ template variables

    def get_req_subvars(self) -> dict[str, Any]:
        """Prepare substitution variables for templates using req_xyz traits."""
        return {
            name[4:]: getattr(self, name) for name in self.trait_names() if name.startswith("req_")
        }

    def cmd_formatted_for_batch(self) -> str:
        """The command which is substituted inside of the batch script.

        A ``cmd`` configured as one string (``c.Spawner.cmd = 'a b'``, which
        JupyterHub keeps as ``['a b']``) is shell text, inserted as it is and
        split by the script's shell, as the existing firecrestspawner did.
        List items and ``args`` are quoted one word each.
        """
        return format_command(list(self.cmd or []), list(self.get_args()))

    def _job_workdir(self) -> str:
        if "{username}" in self.workdir:
            return self.workdir.format(username=self.user.name)
        return f"{self.workdir.rstrip('/')}/{self.user.name}"

    async def _classic_request(self) -> SpawnRequest:
        """Classic mode: the ``req_*`` traits, then ``user_options`` on top."""
        try:
            return classic_request(
                self.get_req_subvars(),
                self.user_options,
                cmd=self.cmd_formatted_for_batch(),
                system=self.req_host,
                firecrest_url=self.firecrest_url,
                template=self.batch_script,
                workdir=self._job_workdir(),
                regexes=self._state_regexes(),
            )
        except ClassicOptionError as e:
            raise self._option_error(e.field, e.message) from None

    def _option_error(self, field: str, message: str) -> Exception:
        return option_error(self.user.name, field, message)

    def _state_regexes(self) -> StateRegexes:
        return StateRegexes()

    # ------------------------------------------------------------ FirecREST access

    def _client_settings(self) -> fc.ClientSettings:
        return client_settings(self)

    async def _user_client(self, url: str = "") -> fc.FirecrestClient:
        await tls_ready(self.firecrest_verify)
        auth = await user_auth(
            self.user,
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            min_token_validity=self.min_token_validity,
        )
        url = url or self.record.firecrest_url or self.firecrest_url
        return fc.get_client(url, f"user:{self.user.name}", auth, self._client_settings())

    def _service_account_configured(self) -> bool:
        return bool(
            self.service_account_client_id
            and self.service_account_client_secret
            and self.service_account_token_url
        )

    async def _service_client(self, url: str = "") -> fc.FirecrestClient:
        await tls_ready(self.firecrest_verify)
        auth = get_service_account_auth(
            self.service_account_client_id,
            self.service_account_client_secret,
            self.service_account_token_url,
        )
        url = url or self.record.firecrest_url or self.firecrest_url
        return fc.get_client(
            url, f"sa:{self.service_account_client_id}", auth, self._client_settings()
        )

    async def get_firecrest_client(self) -> Any:
        """Returns a firecrest client that uses Keycloak's Authorization Code Flow method.

        The pyfirecrest ``AsyncFirecrest`` is shared per (URL, user): do not close it.
        """
        return (await self.jobs.user_client()).raw

    async def get_firecrest_client_service_account(self) -> Any:
        """Returns a firecrest client that uses the Client Credentials Authorization method."""
        return (await self._service_client()).raw

    @property
    def jobs(self) -> JobController:
        """Job control of the current spawn, with the current traits."""
        configured = self._service_account_configured()

        def on_auth(ok: bool) -> None:
            self.access_token_is_valid = ok

        access = JobAccess(
            owner=self.user.name,
            user=self._user_client,
            service=self._service_client if configured else None,
            service_identity=f"sa:{self.service_account_client_id}",
            poll_with_service=self.polling_with_service_account,
            stop_with_service=self.stop_with_service_account,
            on_auth=on_auth,
        )
        settings = JobSettings.from_traits(self)
        if not self.record.system:
            self.record.system = self.req_host
        if not self.record.firecrest_url:
            self.record.firecrest_url = self.firecrest_url
        return self.controller_class(
            self.record,
            access,
            settings,
            self.log,
            classify=self._classify,
            on_change=self._on_job_change,
            on_submitted=self._persist_state,
        )

    # ------------------------------------------------------------ profile mode

    def _profile_mode(self) -> ProfileMode:
        user = self.user
        context = ProfileContext(
            user=UserInfo(user.name, tuple(sorted(g.name for g in user.groups))),
            firecrest_url=self.firecrest_url,
            base_req={k: str(v) for k, v in self.get_req_subvars().items() if v is not None},
            client=self._user_client,
            log=self.log,
        )
        return ProfileMode(
            self.profiles_dir,
            context,
            form_timeout=self.profile_form_timeout,
            allow_link_spawn=self.allow_link_spawn,
            identity_ttl=self.cluster_identity_ttl,
        )

    async def get_options_form(self) -> str:
        """The profile form in profile mode; JupyterHub's ``options_form`` otherwise."""
        if not self.profiles_dir:
            return await super().get_options_form()
        return await self.profile_options_form()

    async def profile_options_form(self) -> str:
        """Render the profile form (visible profiles, remembered valid choices)."""
        saved = getattr(getattr(self, "orm_spawner", None), "user_options", None)
        previous = saved or self.user_options or {}
        return await self._profile_mode().options_form(
            previous if isinstance(previous, Mapping) else {}
        )

    def run_options_from_form(self, form_data: dict[str, list[Any]]) -> Any:
        """Profile mode: declared fields of the selected profile only, checked early."""
        if not self.profiles_dir:
            return super().run_options_from_form(form_data)
        return self._profile_mode().options_from_form(form_data)

    def options_from_query(self, query_data: dict[str, list[str]]) -> Any:
        """``opt-`` links: refused unless ``allow_link_spawn``; then declared keys only."""
        if not self.profiles_dir:
            return super().options_from_query(query_data)
        return self._profile_mode().options_from_query(query_data)

    async def resolve_profile_request(self) -> SpawnRequest | None:
        """Validate ``user_options`` again (every path) and build the request; None in classic mode."""
        if not self.profiles_dir:
            return None
        request = await self._profile_mode().resolve(
            self.user_options,
            cmd=self.cmd_formatted_for_batch(),
            default_workdir=self._job_workdir(),
        )
        # Keep only what was validated (REST bodies are stored as sent, _xsrf
        # and inactive values included): the saved options become canonical.
        if request.options is not None:
            canonical = request.options.user_options()
            if dict(self.user_options or {}) != canonical:
                self.user_options = canonical
                orm_spawner = getattr(self, "orm_spawner", None)
                if orm_spawner is not None:
                    orm_spawner.user_options = canonical
        return request

    # ------------------------------------------------------------ status

    def _classify(self) -> JobStatus:
        if self.state_isunknown():
            return JobStatus.UNKNOWN
        if states.is_gone(self.job_status):
            return JobStatus.NOTFOUND
        if self.state_isrunning():
            return JobStatus.RUNNING
        if self.state_ispending():
            return JobStatus.PENDING
        return states.classify(self.job_status, pending_re="", running_re="", unknown_re="")

    async def firecrest_poll(self) -> list[dict]:
        """Helper function to poll jobs: ``[job]``, or ``[]`` if FirecREST does not know it.

        Served from the shared status cache; raises on a transient error.
        """
        obs = await self.jobs.observe(max_age=self.status_max_age)
        if obs.error is not None:
            raise obs.error
        return [obs.job] if obs.job is not None else []

    async def query_job_status(self) -> JobStatus:
        """Check job status, return JobStatus object."""
        return await self.jobs.status()

    def state_ispending(self) -> bool:
        """Return boolean indicating if job is still waiting to run."""
        return states.phase(self.job_status) is states.Phase.QUEUED

    def state_isrunning(self) -> bool:
        """Return boolean indicating if job is running."""
        return states.phase(self.job_status) is states.Phase.ALLOCATED

    def state_isunknown(self) -> bool | None:
        """Return boolean indicating if job state retrieval failed because of the resource manager."""
        return False

    def state_gethost(self) -> str:
        """Return string, hostname or addr of running job, likely by parsing self.job_status."""
        return states.gethost(self.job_status, states.DEFAULT_EXECHOST_RE)

    async def poll(self) -> int | None:
        """Poll the process: None while pending, running or unknown; an exit status once gone.

        A job a hub restart found queued (its spawn never finished) is
        cancelled here, at once, with a message for the user's next visit
        (docs/architecture.md, "Decisions of job control").
        """
        r = self.record
        if not r.job_id and self._loaded_unstarted and self.port_waiter is None:
            # The hub died while the submit was in flight: stop() cancels by name.
            self._loaded_unstarted = False
            r.notice = self.jobs.interrupted_submit_notice()
            return 1
        if not r.job_id:
            # After a lost submit answer a job may exist under our name: None
            # makes the hub call stop(), which cancels it by name.
            pending = (r.submit_unknown and r.job_name) or self._cleanup is not None
            return None if pending else 0
        if self._loaded_unstarted and self.port_waiter is None:
            self._loaded_unstarted = False
            r.notice = await self.jobs.end_interrupted_spawn()
            return 1
        jobs = self.jobs
        status = await jobs.status()
        if status is JobStatus.NOTFOUND:
            return states.exit_status(r.job)
        if status is JobStatus.UNKNOWN:
            jobs.warn_if_unknown_too_long()
        return None

    # ------------------------------------------------------------ start

    async def _resolve_request(self) -> SpawnRequest:
        request = await self.resolve_profile_request()
        if request is None:
            try:
                request = await self._classic_request()
            except ValueError as e:
                raise spawn_error(
                    "The server cannot start: the site configuration is incomplete. "
                    "Please contact the administrators.",
                    reason="configuration",
                    log_message=f"Invalid spawner configuration: {e}",
                    status_code=500,
                ) from None
        return request

    async def start(self) -> tuple[str, int]:
        """Start the process: submit the job, wait until it runs and reports its port."""
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        # One per server: the next spawn of this server replaces it in the registry.
        register_secret(self.api_token, owner=("api_token", self.user.name, self.name))
        self._progress.reset(self.record.notice)
        self.record.notice = ""
        self._loaded_unstarted = False
        jobs = self.jobs
        try:
            if self.record.orphans:
                await jobs.cancel_orphans()
            request = await self._resolve_request()
            check_command(
                list(self.cmd or []),
                api_token_delivery=self.api_token_delivery,
                batchspawner_singleuser_cmd=self.batchspawner_singleuser_cmd,
                log=self.log,
            )
            self.spawn_request = request
            self.record.new_job(
                system=request.system,
                firecrest_url=request.firecrest_url,
                profile=request.profile,
                job_name=self._new_job_name(),
            )
            self.record.regexes = request.regexes
            self.port_waiter = PortWaiter()
            self._set_phase("submitting")
            await self.submit_batch_script()
            self._set_phase("queued")
            await jobs.wait_until_running(deadline, self.start_timeout, self.port_waiter)
            self.record.host = host = await self._gethost()
            self._set_phase("waiting")
            self.record.port = port = await jobs.wait_for_port(deadline, self.port_waiter)
            # The wrapper reads (and deletes) the token file before it reports the port.
            self.record.token_file = ""
            self._set_phase("ready")
            self.log.info(
                "Job %s (%s) of %s runs the server on %s:%s",
                self.job_id,
                self.record.job_name,
                self.user.name,
                host,
                port,
            )
            return host, port
        except asyncio.CancelledError as e:
            # The hub gave up (start_timeout) or the user stopped the spawn:
            # answer at once; the clean-up runs on, and stop() awaits it.
            self._set_phase("failed")
            self._cleanup = cleanup = asyncio.ensure_future(jobs.cleanup_failed_start(e))
            with contextlib.suppress(BaseException):  # a bounded head start only
                await asyncio.wait_for(asyncio.shield(cleanup), 0.5)
            if cleanup.done():
                self._cleanup = None
            raise
        except fc.SystemNotFound as e:
            self._set_phase("failed")
            await jobs.cleanup_failed_start(e)
            raise system_error(e) from None
        except OptionError as e:
            self._set_phase("failed")
            await jobs.cleanup_failed_start(e)
            raise self._option_error(e.field, e.message) from None
        except BaseException as e:
            self._set_phase("failed")
            await jobs.cleanup_failed_start(e)
            raise
        finally:
            if self.port_waiter is not None:
                self.port_waiter.close()
                self.port_waiter = None

    def _new_job_name(self) -> str:
        self.record.spawn_id = naming.new_spawn_id()
        return naming.job_name(self.hub_id, self.user.name, self.name or "", self.record.spawn_id)

    async def submit_batch_script(self) -> None:
        """Submits the batch script that starts the notebook server job.

        Called by ``start()`` for ``self.spawn_request``. The job id is in the
        state before anything else is awaited, so a failed or timed-out spawn
        can always cancel it.
        """
        request = self.spawn_request
        if request is None:
            raise RuntimeError("submit_batch_script() is called by start()")
        jobs = self.jobs
        token = self.api_token if self.api_token_delivery == "file" else ""  # noqa: S105
        if self.api_token_delivery == "file" and not token:  # noqa: S105 - an option value
            # FirecREST never answers an empty upload (408 after its command timeout).
            self.log.warning("No API token to deliver to job %s", self.record.job_name)
        prepare = jobs.preparer(
            request,
            token=token or "",
            render=lambda job_name, account: render_script(
                request,
                job_name=job_name,
                username=self.user.name,
                cmd=self.cmd_formatted_for_batch(),
                account=account,
                log=self.log,
            ),
            env=lambda token_file: job_env(self.get_env(), token_file),
        )
        await jobs.submit(request, prepare, self._new_job_name)

    def _persist_state(self) -> None:
        """Save the state now, not only when the spawn succeeds.

        JupyterHub persists ``get_state()`` after ``start()`` returns; a hub
        restart during a queued spawn would lose the job. With the state saved
        here, the restarted hub finds the job and ends it (see ``poll()``).
        """
        orm_spawner = getattr(self, "orm_spawner", None)
        session = object_session(orm_spawner) if orm_spawner is not None else None
        if orm_spawner is None or session is None:
            return
        try:
            orm_spawner.state = self.get_state()
            session.commit()
        except Exception as e:  # noqa: BLE001 - the spawn goes on; the hub saves later
            session.rollback()
            self.log.warning("Could not save the state of %s early: %s", self._log_name, e)

    async def _gethost(self) -> str:
        result = self.state_gethost()
        host = await result if inspect.isawaitable(result) else result
        host = str(host or "").strip()
        if not host:
            raise spawn_error(
                f"Job {self.job_id} runs, but its node could not be determined "
                f"(job status {self.job_status!r}).",
                reason="no-host",
                log_message=(
                    f"Empty host for job {self.job_id} ({self.job_status!r}): check "
                    "node_name_template / state_exechost_re / custom_state_gethost"
                ),
                status_code=500,
            )
        return host

    # ------------------------------------------------------------ stop

    async def cancel_batch_job(self) -> None:
        """Cancel the job running the notebook server (harmless if it already ended).

        A refused cancel (FirecREST 404/500) is checked with a fresh GET: an
        ended job is success, a job still queued or running is an error.
        """
        await self.jobs.cancel()

    async def stop(self, now: bool = False) -> None:
        """Stop the singleuser server job.

        Returns right after the cancellation when ``now``, otherwise waits (at
        most ``stop_timeout``) until the job is confirmed gone. Idempotent.
        Left-over jobs (orphans) are cancelled too; a token file the job never
        read is removed.
        """
        if self._cleanup is not None:
            cleanup, self._cleanup = self._cleanup, None
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(cleanup), self.firecrest_timeout * 2)
        jobs = self.jobs
        try:
            await jobs.stop(now)
        finally:
            await jobs.remove_token_file()

    # ------------------------------------------------------------ progress

    @property
    def phase(self) -> str:
        """Where ``start()`` is: submitting, queued, waiting (for the port), ready or failed."""
        return self._progress.phase

    def _set_phase(self, phase: str) -> None:
        self._progress.set_phase(phase, self.record)

    def _on_job_change(self) -> None:
        self._progress.note(self.record)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Async generator that yields status messages reflecting the progress of a job.

        Read from what start() observes (the shared cache): no FirecREST call
        of its own. ``message`` is plain text, ``html_message`` is escaped.
        """
        async for event in self._progress.stream():
            yield event


def _check_user_options(spawner: FirecRESTSpawnerBase, user_options: dict[str, Any]) -> None:
    """JupyterHub's ``apply_user_options`` hook: a quick check, nothing applied.

    Profile mode validates in ``options_from_form`` and again in ``start()``;
    classic mode checks names and values here, and again in ``start()``.
    """
    if spawner.profiles_dir:
        return
    try:
        classic_user_variables(user_options)
    except ClassicOptionError as e:
        raise spawner._option_error(e.field, e.message) from None


#: The documented classes defined in :mod:`firecrestspawner.slurm`, importable from here.
_MOVED = {"FirecRESTSpawnerRegexStates", "SlurmSpawner"}


def __getattr__(name: str) -> Any:
    # Compatibility: sites and entry points import every documented class
    # from this module; the subclasses live in slurm.py (which imports this
    # module, so they are looked up on first use instead of at import).
    if name in _MOVED:
        from . import slurm

        return getattr(slurm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MOVED])


__all__ = [  # noqa: F822 - two names come from __getattr__
    "TOKEN_FILE_VAR",
    "AuthorizationCodeFlowAuth",
    "FirecRESTSpawnerBase",
    "FirecRESTSpawnerRegexStates",
    "JobStatus",
    "SlurmSpawner",
    "format_template",
]

# The one documented import side effect: the port-only API handler.
register_api_handler()
