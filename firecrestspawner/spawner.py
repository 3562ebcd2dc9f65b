"""The documented spawner classes: traits and lifecycle glue.

``FirecRESTSpawnerBase`` runs each single-user server as a batch job submitted
through FirecREST v2. The logic lives in the modules it glues together:
:mod:`~firecrestspawner.client` (every FirecREST call), :mod:`~firecrestspawner.status`
(the shared status cache), :mod:`~firecrestspawner.states` (state mapping),
:mod:`~firecrestspawner.naming` (job names), :mod:`~firecrestspawner.auth`
(credentials), :mod:`~firecrestspawner.jobenv` (job environment) and
:mod:`~firecrestspawner.handlers` (port reporting).

Importing this module registers the port-only hub API handler
(``POST /hub/api/firecrestspawner``), as the existing firecrestspawner did;
it is the package's one import side effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.traitlets import Command
from sqlalchemy.orm import object_session
from traitlets import Any as AnyTrait
from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode, Union, default

from . import client as fc
from . import errors, naming, states
from . import status as status_cache
from .auth import (
    AuthError,
    AuthorizationCodeFlowAuth,
    SessionExpired,
    get_service_account_auth,
    user_auth,
)
from .errors import spawn_error
from .handlers import LEGACY_WRAPPER_HINT, PortReportError, PortWaiter, register_api_handler
from .jobenv import job_environment
from .logs import attach_to_hub_log
from .profile_mode import ProfileModeMixin
from .profiles.script import (
    BUILTIN_REQ_NAMES,
    ScriptRejected,
    ScriptTemplateError,
    builtin_template,
    format_template,
    log_path,
    render_batch_script,
)
from .redact import redact, register_secret
from .request import (
    ClassicOptionError,
    FormValue,
    SpawnRequest,
    StateRegexes,
    classic_user_variables,
    ensure_job_name,
    format_command,
    runs_wrapper,
)
from .states import JobStatus

#: Name of the environment variable that points the job wrapper at the token file.
TOKEN_FILE_VAR = "FIRECRESTSPAWNER_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
_TOKEN_VARS = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
_WRAPPER = "firecrestspawner-singleuser"
_LOG_TAIL_LINES = 30
_LOG_TAIL_BYTES = 4096
_MAX_ORPHANS = 20


class FirecRESTSpawnerBase(ProfileModeMixin, Spawner):
    """Base class for spawners using PyFirecrest to submit jobs.

    All ``req_xyz`` traits are available as ``xyz`` in the batch script.
    """

    # ------------------------------------------------------------ overridden hub traits

    start_timeout = Integer(
        300,
        help="""Timeout (seconds) before giving up on starting the single-user server.

        Batch jobs queue: the default is longer than JupyterHub's 60 s. When it
        expires the job is cancelled.
        """,
    ).tag(config=True)

    ip = Unicode(
        "0.0.0.0",  # noqa: S104 - the server runs on a compute node
        help="""Address for the single-user server to listen at, on the compute node.

        The proxy connects to the node directly, so the default binds every interface.
        """,
    ).tag(config=True)

    cmd = Command(
        [_WRAPPER, "jupyterhub-singleuser"],
        allow_none=True,
        help="""The command run inside the batch job (JupyterHub's ``Spawner.cmd``).

        Keep ``firecrestspawner-singleuser`` first: it picks a free port on the
        node, reports it to the hub and, with ``api_token_delivery = "file"``,
        loads the API token from its private file.
        """,
    ).tag(config=True)

    # ------------------------------------------------------------ FirecREST

    firecrest_url = Unicode(
        help="""Base URL of the FirecREST v2 API, e.g. ``https://api.example.org/firecrest/v2``.

        Defaults to the ``FIRECREST_URL`` environment variable of the hub
        (read when the spawner is created, not at import).
        """,
    ).tag(config=True)

    @default("firecrest_url")
    def _default_firecrest_url(self) -> str:
        return os.environ.get("FIRECREST_URL", "")

    firecrest_api_version = Unicode(
        "",
        help="""FirecREST API version to assume (e.g. ``2.5.6``).

        Empty: asked from the server once per client (``F7T-AppVersion``).
        Only a release version ``X.Y.Z`` is used; anything else (``2``,
        ``2.x.x`` of development builds) means the newest API.
        """,
    ).tag(config=True)

    firecrest_timeout = Float(
        30.0,
        help="""Timeout (seconds) of each FirecREST request.""",
    ).tag(config=True)

    firecrest_read_attempts = Integer(
        4,
        help="""Attempts for idempotent FirecREST reads on transient errors.

        Retries use exponential backoff with jitter; a 429 waits for its
        ``Retry-After`` (at most ``firecrest_max_retry_after``).
        """,
    ).tag(config=True)

    firecrest_read_deadline = Float(
        60.0,
        help="""Overall deadline (seconds) of one read including its retries.""",
    ).tag(config=True)

    firecrest_max_retry_after = Float(
        30.0,
        help="""Longest ``Retry-After`` (seconds) honoured on a 429 before giving up.""",
    ).tag(config=True)

    firecrest_submit_attempts = Integer(
        3,
        help="""Submissions of one spawn at most.

        A submit is repeated only when FirecREST provably did not act on it,
        or when the job, looked up by its unique name, is not on the cluster.
        """,
    ).tag(config=True)

    firecrest_verify = Union(
        [Bool(), Unicode()],
        default_value=True,
        help="""TLS verification of FirecREST: True, False, or a CA bundle path.""",
    ).tag(config=True)

    # ------------------------------------------------------------ credentials

    token_url = Unicode(
        help="""Token endpoint of the identity provider (refresh-token grant).

        Defaults to the authenticator's ``token_url`` (GenericOAuthenticator).
        """,
    ).tag(config=True)

    @default("token_url")
    def _default_token_url(self) -> str:
        return str(getattr(self.authenticator, "token_url", "") or "")

    client_id = Unicode(
        help="""OAuth client id used to refresh the user's tokens.

        Defaults to the authenticator's ``client_id``.
        """,
    ).tag(config=True)

    @default("client_id")
    def _default_client_id(self) -> str:
        return str(getattr(self.authenticator, "client_id", "") or "")

    client_secret = Unicode(
        help="""OAuth client secret used to refresh the user's tokens.

        Defaults to the authenticator's ``client_secret``.
        """,
    ).tag(config=True)

    @default("client_secret")
    def _default_client_secret(self) -> str:
        return str(getattr(self.authenticator, "client_secret", "") or "")

    min_token_validity = Float(
        60.0,
        help="""Refresh the user's access token when less than this many seconds are left.

        FirecREST refuses tokens with under 30 s left; keep a margin above that.
        """,
    ).tag(config=True)

    service_account_client_id = Unicode(
        help="""Client id of the service account (client-credentials grant).

        Defaults to ``$SA_CLIENT_ID``. Used for polling when
        ``polling_with_service_account`` is set and for cancelling when the
        user's session has expired and ``stop_with_service_account`` is set.
        """,
    ).tag(config=True)

    @default("service_account_client_id")
    def _default_sa_client_id(self) -> str:
        return os.environ.get("SA_CLIENT_ID", "")

    service_account_client_secret = Unicode(
        help="""Client secret of the service account. Defaults to ``$SA_CLIENT_SECRET``.""",
    ).tag(config=True)

    @default("service_account_client_secret")
    def _default_sa_client_secret(self) -> str:
        return os.environ.get("SA_CLIENT_SECRET", "")

    service_account_token_url = Unicode(
        help="""Token endpoint for the service account. Defaults to ``$SA_AUTH_TOKEN_URL``.""",
    ).tag(config=True)

    @default("service_account_token_url")
    def _default_sa_token_url(self) -> str:
        return os.environ.get("SA_AUTH_TOKEN_URL", "")

    polling_with_service_account = Bool(
        True,
        help="""If True, use a service account client for job polling.

        All spawners then share one job list (all users) per system and
        interval. Without service account credentials the user's own
        credential is used.
        """,
    ).tag(config=True)

    stop_with_service_account = Bool(
        True,
        help="""Cancel through the service account when the user's session has expired.

        Without it, a user whose login expired cannot stop a running job from
        the hub. Needs service account credentials allowed to cancel any job.
        """,
    ).tag(config=True)

    access_token_is_valid = Bool(
        False,
        help="""Whether the user's FirecREST credential worked the last time it was used.

        Not configurable; read by site ``home.html`` templates to show the stop button.
        """,
    )

    api_token_delivery = CaselessStrEnum(
        ["file", "env"],
        default_value="file",
        help="""How the job receives its JupyterHub API token.

        ``"file"`` (default): uploaded through FirecREST into a 0600 file in a
        0700 directory under the job's working directory; the job gets only
        the path (``FIRECRESTSPAWNER_TOKEN_FILE``) and ``firecrestspawner-singleuser``
        reads and deletes the file. The token is on no command line.

        ``"env"``: sent in FirecREST's job environment, as the existing
        firecrestspawner did. FirecREST passes it to ``sbatch --export`` on the
        login node, where other users can see it in the process list while
        sbatch runs, and Slurm stores it with the job.
        """,
    ).tag(config=True)

    # ------------------------------------------------------------ timing

    startup_poll_interval = Float(
        0.5,
        help="""Polling interval (seconds) to check job state during startup.

        This is the first interval; it grows by half each time up to
        ``startup_poll_max_interval``.
        """,
    ).tag(config=True)

    startup_poll_max_interval = Float(
        2.0,
        help="""Longest interval (seconds) between job state checks during startup.""",
    ).tag(config=True)

    status_max_age = Float(
        10.0,
        help="""Maximum age (seconds) of a cached job state used by ``poll()``.

        All spawners of the hub share one job list per system; a longer age
        means fewer FirecREST requests and slower detection of ended jobs.
        """,
    ).tag(config=True)

    not_found_grace_period = Float(
        60.0,
        help="""Seconds after submit during which "job not found" means pending.

        Slurm may not list a job right after sbatch; once the job has been
        seen, "not found" means it ended.
        """,
    ).tag(config=True)

    unknown_grace_period = Float(
        600.0,
        help="""Seconds of unanswered status queries after which a WARNING is logged.

        ``poll()`` keeps reporting the server as running while FirecREST or
        Slurm does not answer: state is never cleared without positive
        evidence that the job ended. After this period a WARNING is logged
        (once per period) so that an operator can look.
        """,
    ).tag(config=True)

    token_file_check_delay = Float(
        30.0,
        help="""Seconds a job may wait for its port before the hub checks that it read its token file.

        With ``api_token_delivery = "file"``, ``firecrestspawner-singleuser``
        reads and deletes the file at once. A file still there means the job
        runs another wrapper (the existing project's cannot read it): the
        spawn then fails with a message saying what to upgrade, instead of
        waiting for ``start_timeout``.
        """,
    ).tag(config=True)

    stop_timeout = Float(
        60.0,
        help="""Longest wait (seconds) for a cancelled job to leave the queue in ``stop()``.""",
    ).tag(config=True)

    # ------------------------------------------------------------ job

    workdir = Unicode(
        "/users",
        help="""Directory where the job will be submitted from.

        The job runs in ``<workdir>/<username>``; a value containing
        ``{username}`` is formatted instead (``/scratch/{username}/jupyter``).
        """,
    ).tag(config=True)

    hub_id = Unicode(
        "jupyterhub",
        help="""Identifies this hub in job names (``fcs.<hub_id>.<user>.<server>.<spawn>``).

        Set a distinct value for each hub submitting to the same cluster.
        """,
    ).tag(config=True)

    batch_script = Unicode(
        "",
        help="""Template for job submission script.

        Traits on this class named like ``req_xyz`` are substituted for ``xyz``
        (Jinja2 when the text contains ``{{`` or ``{%``, else ``str.format``).
        Must include ``cmd``, replaced with the single-user command line. Other
        variables: ``job_name`` (unique per spawn), ``workdir`` (the job's
        working directory), ``account``, and every ``req_*`` name of the
        built-in templates (empty unless set). Values that do not come from
        this configuration may not add or change ``#SBATCH`` lines.
        """,
    ).tag(config=True)

    batchspawner_singleuser_cmd = Unicode(
        "batchspawner-singleuser",
        help="""A wrapper which is capable of special batchspawner setup.

        Accepted for compatibility and unused: the job runs ``Spawner.cmd``,
        whose first word should be ``firecrestspawner-singleuser``.
        """,
    ).tag(config=True)

    job_id = Unicode("", help="""Id of the batch job of the current spawn (state).""")

    job_status = Unicode(
        "", help="""Last known ``"<STATE> <nodes>"`` of the job, matched by the state regexes."""
    )

    # all `req_foo` traits are template variables `foo`
    req_host = Unicode(
        "",
        help="""Name of the FirecREST system (cluster) to submit the job to.

        Also the template variable ``host``.
        """,
    ).tag(config=True)

    req_queue = Unicode("", help="""Queue name to submit job to resource manager""").tag(
        config=True
    )
    req_memory = Unicode("", help="""Memory to request from resource manager""").tag(config=True)
    req_nprocs = Unicode(
        "",
        help="""Number of processors to request from resource manager (``--cpus-per-task`` in the built-in template, as in the existing firecrestspawner)""",
    ).tag(config=True)
    req_nnodes = Unicode("", help="""Number of nodes to request from resource manager""").tag(
        config=True
    )
    req_ngpus = Unicode("", help="""Number of GPUs to request from resource manager""").tag(
        config=True
    )
    req_runtime = Unicode("", help="""Length of time for submitted job to run""").tag(config=True)
    req_partition = Unicode("", help="""Partition name to submit job to resource manager""").tag(
        config=True
    )
    req_account = Unicode(
        "",
        help="""Account name string to pass to the resource manager.

        Empty: the user's default Slurm account on the system (the account
        FirecREST ``userinfo`` marks ``default``); when FirecREST reports no
        accounts, none is set and Slurm charges the user's default account.
        """,
    ).tag(config=True)
    req_options = Unicode("", help="""Other options to include into job submission script""").tag(
        config=True
    )
    req_prologue = Unicode("", help="""Script to run before single user server starts.""").tag(
        config=True
    )
    req_epilogue = Unicode("", help="""Script to run after single user server ends.""").tag(
        config=True
    )
    req_uenv = Unicode("", help="""Name of a uenv to mount""").tag(config=True)
    req_uenv_view = Unicode("", help="""Name of a uenv view to activate""").tag(config=True)
    req_reservation_custom = Unicode("", help="""Custom reservation to pass in the form""").tag(
        config=True
    )
    req_username = Unicode(help="""The user's name (template variable ``username``).""")

    @default("req_username")
    def _default_req_username(self) -> str:
        return self.user.name if self.user else ""

    req_homedir = Unicode(
        "", help="""Home directory template variable (``homedir``); empty unless configured."""
    ).tag(config=True)

    # ------------------------------------------------------------ lifecycle state (memory)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The package's records (client, auth, status) go through the hub's
        # logger and format, redacted at that one boundary.
        attach_to_hub_log(self.log)
        self._system = ""
        self._url = ""
        self._job_name = ""
        self._spawn_id = ""
        self._submitted_at = 0.0
        self._seen = False
        self._host = ""
        self._port = 0
        self._profile = ""
        self._log_path = ""
        #: The job's API token file while the job may still need it.
        self._token_file = ""
        self._job: dict | None = None
        self._last_error = ""
        self._unknown_since: float | None = None
        self._unknown_warned_at = 0.0
        self._regexes = StateRegexes()
        self._phase = ""
        self.port_waiter: PortWaiter | None = None
        self._progress_log: list[dict[str, Any]] = []
        self._progress_changed: asyncio.Event | None = None
        self._pending_submit: tuple[SpawnRequest, str, dict[str, str]] | None = None
        self._submit_unknown = False
        #: Jobs whose cancellation could not be confirmed; they survive
        #: clear_state() and are cancelled again at the next start().
        self._orphans: list[dict[str, str]] = []
        #: The current job is positively gone (terminal state or not found).
        self._ended = False

    # ------------------------------------------------------------ compatibility

    @property
    def job(self) -> dict[str, Any]:
        """The job as FirecREST last reported it, for site hooks.

        The existing firecrestspawner kept its submit answer here; hooks such
        as a ``custom_state_gethost`` read ``job["jobId"]`` and
        ``job["job_file_out"]`` (the job's output file, a FirecREST v1 name).
        """
        job = dict(self._job or {})
        if self.job_id:
            job.setdefault("jobId", self.job_id)
        if self._log_path:
            job.setdefault("job_file_out", self._log_path)
        return job

    @property
    def host(self) -> str:
        """The FirecREST system of the job (``req_host`` or the profile's), for site hooks."""
        return self._current_system()

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # Tells JupyterHub that user_options are handled (no "unhandled" warning)
        # and refuses bad classic-mode options before the spawn starts.
        return _check_user_options

    # ------------------------------------------------------------ state

    def get_state(self) -> dict:
        """Add job id, system and what poll/stop need after a hub restart."""
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
        if self.job_status:
            state["job_status"] = self.job_status
        for key, value in (
            ("system", self._system),
            ("firecrest_url", self._url),
            ("job_name", self._job_name),
            ("host", self._host),
            ("port", self._port),
            ("profile", self._profile),
            ("submitted_at", self._submitted_at),
            ("log_path", self._log_path),
            ("token_file", self._token_file),
        ):
            if value:
                state[key] = value
        if self._seen:
            state["seen"] = True
        if self._orphans:
            state["orphans"] = [dict(o) for o in self._orphans[-_MAX_ORPHANS:]]
        return state

    def load_state(self, state: dict) -> None:
        """Load job id and friends; old states with only job_id/job_status work."""
        super().load_state(state)
        self.job_id = str(state.get("job_id") or "")
        self.job_status = str(state.get("job_status") or "")
        self._system = str(state.get("system") or "")
        self._url = str(state.get("firecrest_url") or "")
        self._job_name = str(state.get("job_name") or "")
        self._host = str(state.get("host") or "")
        self._port = int(state.get("port") or 0)
        self._profile = str(state.get("profile") or "")
        self._log_path = str(state.get("log_path") or "")
        self._token_file = str(state.get("token_file") or "")
        self._submitted_at = float(state.get("submitted_at") or 0.0)
        # A legacy state with a job status has seen its job.
        self._seen = bool(state.get("seen")) or bool(self.job_status) or not self._submitted_at
        self._orphans = [
            {k: str(o.get(k) or "") for k in ("job_id", "system", "firecrest_url", "job_name")}
            for o in state.get("orphans") or []
            if isinstance(o, dict) and o.get("job_id") and o.get("system")
        ]

    def clear_state(self) -> None:
        """Clear the job state (the hub calls this at spawn start and after stop).

        Jobs whose cancellation failed are kept (``orphans``) and cancelled
        again at the next start, since the hub clears the state even when
        ``stop()`` failed; so is a job not known to have ended (for example
        one loaded from the state of a spawn interrupted by a hub restart).
        """
        if self.job_id and not self._ended:
            self._remember_orphan()
        super().clear_state()
        self.job_id = ""
        self.job_status = ""
        self._system = self._url = self._job_name = self._host = self._profile = ""
        self._log_path = self._spawn_id = self._last_error = self._phase = ""
        self._token_file = ""
        self._port = 0
        self._submitted_at = 0.0
        self._seen = False
        self._job = None
        self._unknown_since = None
        self._submit_unknown = False
        self._ended = False

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
        """Classic mode: the ``req_*`` traits, then ``user_options`` on top.

        As in the existing firecrestspawner, each user option becomes the
        template variable of its name (form values answer ``[0]``); unlike
        it, names are checked and every user value is untrusted.
        """
        subvars: dict[str, Any] = {
            k: FormValue(v) if isinstance(v, str) else v for k, v in self.get_req_subvars().items()
        }
        subvars["cmd"] = self.cmd_formatted_for_batch()
        try:
            chosen = classic_user_variables(self.user_options)
        except ClassicOptionError as e:
            raise self._option_error(e.field, e.message) from None
        subvars.update(chosen)
        return SpawnRequest(
            system=self.req_host,
            firecrest_url=self.firecrest_url,
            template=self.batch_script,
            variables=subvars,
            workdir=self._job_workdir(),
            regexes=self._state_regexes(),
            user_set=frozenset(chosen),
        )

    def _option_error(self, field: str, message: str) -> errors.HTTPError:
        return spawn_error(
            f"Invalid option {field!r}: {message}.",
            reason="invalid-options",
            log_message=f"Refused options of {self.user.name}: {field}: {message}",
            status_code=400,
        )

    def _state_regexes(self) -> StateRegexes:
        return StateRegexes()

    async def _get_batch_script(self, **subvars: Any) -> str:
        """Format batch script from vars."""
        return format_template(self.batch_script, **subvars)

    # ------------------------------------------------------------ FirecREST clients

    def _client_settings(self) -> fc.ClientSettings:
        return fc.ClientSettings(
            request_timeout=self.firecrest_timeout,
            connect_timeout=min(10.0, self.firecrest_timeout),
            read_attempts=self.firecrest_read_attempts,
            read_deadline=self.firecrest_read_deadline,
            max_retry_after=self.firecrest_max_retry_after,
            submit_attempts=self.firecrest_submit_attempts,
            lookup_grace=min(self.not_found_grace_period, 10.0),
            api_version=self.firecrest_api_version,
            verify=self.firecrest_verify,
        )

    def _current_url(self) -> str:
        return self._url or self.firecrest_url

    def _current_system(self) -> str:
        return self._system or self.req_host

    async def _user_client(self, url: str = "") -> fc.FirecrestClient:
        try:
            auth = await user_auth(
                self.user,
                token_url=self.token_url,
                client_id=self.client_id,
                client_secret=self.client_secret,
                min_token_validity=self.min_token_validity,
            )
        except BaseException:
            self.access_token_is_valid = False
            raise
        self.access_token_is_valid = True
        return fc.get_client(
            url or self._current_url(), f"user:{self.user.name}", auth, self._client_settings()
        )

    def _service_account_configured(self) -> bool:
        return bool(
            self.service_account_client_id
            and self.service_account_client_secret
            and self.service_account_token_url
        )

    async def _service_client(self) -> fc.FirecrestClient:
        auth = get_service_account_auth(
            self.service_account_client_id,
            self.service_account_client_secret,
            self.service_account_token_url,
        )
        return fc.get_client(
            self._current_url(),
            f"sa:{self.service_account_client_id}",
            auth,
            self._client_settings(),
        )

    async def get_firecrest_client(self) -> Any:
        """Returns a firecrest client that uses Keycloak's Authorization Code Flow method.

        The pyfirecrest ``AsyncFirecrest`` is shared per (URL, user): do not close it.
        """
        return (await self._user_client()).raw

    async def get_firecrest_client_service_account(self) -> Any:
        """Returns a firecrest client that uses the Client Credentials Authorization method."""
        return (await self._service_client()).raw

    async def _polling_client(self) -> tuple[fc.FirecrestClient, str, bool]:
        """Client, cache identity and ``allusers`` for status queries."""
        if self.polling_with_service_account and self._service_account_configured():
            return await self._service_client(), f"sa:{self.service_account_client_id}", True
        return await self._user_client(), f"user:{self.user.name}", False

    # ------------------------------------------------------------ status

    async def _observe(self, max_age: float) -> status_cache.Observation:
        system = self._current_system()
        cache = status_cache.get_status(self._current_url(), system)
        job_id = self.job_id
        try:
            client, identity, allusers = await self._polling_client()
        except Exception as e:  # noqa: BLE001 - no credential: state unknown
            return status_cache.Observation(None, time.monotonic(), e)
        return await cache.observe(
            job_id,
            identity=identity,
            list_jobs=lambda: client.jobs(system, allusers=allusers),
            get_job=lambda: client.job(system, job_id),
            max_age=max_age,
        )

    def _apply(self, obs: status_cache.Observation) -> JobStatus:
        """Turn one observation into a JobStatus and update the in-memory state."""
        result = self._apply_observation(obs)
        if self._phase in ("queued", "waiting"):
            self._note_progress()
        return result

    def _apply_observation(self, obs: status_cache.Observation) -> JobStatus:
        if obs.error is not None:
            described = fc.describe(obs.error)
            if isinstance(obs.error, fc.SystemNotFound) and described != self._last_error:
                # A configuration error, not a job that ended: keep the job, tell the operator.
                self.log.error(
                    "Status of job %s (%s) of %s unknown: %s",
                    self.job_id,
                    self._job_name,
                    self.user.name,
                    described,
                )
            self._last_error = described
            if self._unknown_since is None:
                self._unknown_since = time.monotonic()
            return JobStatus.UNKNOWN
        self._unknown_since = None
        self._last_error = ""
        if obs.job is not None:
            self._seen = True
            self._job = obs.job
            self.job_status = states.job_status_string(
                states.state_of(obs.job), str(obs.job.get("nodes") or "")
            )
            return self._classify()
        # FirecREST does not know the job.
        recent = time.time() - self._submitted_at < self.not_found_grace_period
        if not self._seen and self._submitted_at and recent:
            return JobStatus.PENDING
        self._ended = True
        return JobStatus.NOTFOUND

    def _classify(self) -> JobStatus:
        if self.state_isunknown():
            return JobStatus.UNKNOWN
        if states.is_gone(self.job_status):
            self._ended = True
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
        obs = await self._observe(max_age=self.status_max_age)
        if obs.error is not None:
            raise obs.error
        return [obs.job] if obs.job is not None else []

    async def query_job_status(self) -> JobStatus:
        """Check job status, return JobStatus object."""
        if not self.job_id:
            return JobStatus.NOTFOUND
        return self._apply(await self._observe(max_age=self.status_max_age))

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

    # ------------------------------------------------------------ poll

    async def poll(self) -> int | None:
        """Poll the process: None while pending, running or unknown; an exit status once gone."""
        if not self.job_id:
            # After an ambiguous submit a job may exist under our name: None
            # makes the hub call stop(), which cancels it by name.
            return None if self._submit_unknown and self._job_name else 0
        status = await self.query_job_status()
        if status is JobStatus.NOTFOUND:
            return states.exit_status(self._job)
        if status is JobStatus.UNKNOWN:
            self._warn_if_unknown_too_long()
        return None

    def _warn_if_unknown_too_long(self) -> None:
        if self._unknown_since is None:
            return
        now = time.monotonic()
        if now - self._unknown_since < self.unknown_grace_period:
            return
        if now - self._unknown_warned_at < self.unknown_grace_period:
            return
        self._unknown_warned_at = now
        self.log.warning(
            "Status of job %s (%s) on %s unknown for %.0f s (%s); still treating it as running",
            self.job_id,
            self._job_name,
            self._current_system(),
            now - self._unknown_since,
            self._last_error,
        )

    # ------------------------------------------------------------ start

    def _check_config(self, request: SpawnRequest) -> None:
        if self.batchspawner_singleuser_cmd != "batchspawner-singleuser":
            self.log.warning(
                "Spawner.batchspawner_singleuser_cmd is set but unused: "
                "the job runs Spawner.cmd (start it with %s)",
                _WRAPPER,
            )
        if self.api_token_delivery == "file" and not runs_wrapper(  # noqa: S105 - an option value
            list(self.cmd or []), _WRAPPER
        ):
            raise spawn_error(
                "The server cannot start: the site configuration is inconsistent "
                "(api_token_delivery='file' needs Spawner.cmd to run "
                f"{_WRAPPER}). Please contact the administrators.",
                reason="configuration",
                log_message=f"api_token_delivery='file' requires {_WRAPPER!r} in Spawner.cmd",
                status_code=500,
            )

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
        self._regexes = request.regexes
        return request

    async def _template_variables(self, request: SpawnRequest) -> dict[str, Any]:
        variables = dict(request.variables)
        variables.setdefault("cmd", self.cmd_formatted_for_batch())
        variables.setdefault("host", request.system)
        variables.setdefault("username", self.user.name)
        for name in BUILTIN_REQ_NAMES:
            variables.setdefault(name, "")
        variables["job_name"] = self._job_name
        variables["workdir"] = request.workdir
        if not variables.get("account"):
            variables["account"] = await self._default_account(request.system)
        return variables

    async def _default_account(self, system: str) -> str:
        """The user's default Slurm account on ``system``, or "" to let Slurm choose.

        FirecREST's ``userinfo`` lists the accounts from ``sacctmgr`` with one
        marked ``default``. The Unix group is not an account: without
        accounts, no ``--account`` is better than a refused or wrong one.
        """
        try:
            client = await self._user_client()
            info = await client.userinfo(system)
        except fc.SystemNotFound:
            raise
        except Exception as e:  # noqa: BLE001 - no account is a valid outcome
            self.log.warning("No default account for %s on %s: %s", self.user.name, system, e)
            return ""
        for account in (info or {}).get("accounts") or []:
            if isinstance(account, dict) and account.get("default") and account.get("name"):
                return str(account["name"])
        return ""

    def _render(self, request: SpawnRequest, variables: dict[str, Any]) -> str:
        script = self._render_checked(request, variables)
        script, renamed = ensure_job_name(script, self._job_name, request.scheduler)
        if renamed:
            self.log.info(
                "The batch script names its job itself; %s is added as the last --job-name "
                "(the hub finds its jobs by this name)",
                self._job_name,
            )
        return script

    def _render_checked(self, request: SpawnRequest, variables: dict[str, Any]) -> str:
        try:
            return render_batch_script(
                request.template,
                variables,
                name=f"profile {request.profile}" if request.profile else "batch_script",
                trusted=request.trusted(variables),
            )
        except ScriptRejected as e:
            raise spawn_error(
                f"The batch script was refused: the value of {e.field!r} {e.reason}.",
                reason="script-rejected",
                log_message=f"Batch script for {self._job_name} rejected: {e}",
                status_code=400,
            ) from None
        except (ScriptTemplateError, KeyError, IndexError, ValueError) as e:
            raise spawn_error(
                "The server cannot start: the batch script template could not be rendered. "
                "Please contact the administrators.",
                reason="configuration",
                log_message=f"Batch script rendering failed: {type(e).__name__}: {redact(e)}",
                status_code=500,
            ) from None

    def _job_env(self, token_file: str | None) -> dict[str, str]:
        env = self.get_env()
        if token_file is not None:
            for key in _TOKEN_VARS:
                env.pop(key, None)
            env[TOKEN_FILE_VAR] = token_file
        return job_environment(env)

    async def start(self) -> tuple[str, int]:
        """Start the process: submit the job, wait until it runs and reports its port."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        # One per server: the next spawn of this server replaces it in the registry.
        register_secret(self.api_token, owner=("api_token", self.user.name, self.name))
        self.clear_state_for_spawn()
        try:
            if self._orphans:
                await self._cancel_orphans()
            request = await self._resolve_request()
            self._check_config(request)
            self._system = request.system
            self._url = request.firecrest_url
            self._profile = request.profile
            self._spawn_id = naming.new_spawn_id()
            self._job_name = naming.job_name(
                self.hub_id, self.user.name, self.name or "", self._spawn_id
            )
            self.port_waiter = PortWaiter()
            self._set_phase("submitting")
            variables = await self._template_variables(request)
            script = self._render(request, variables)
            token_file = None
            if self.api_token_delivery == "file" and self.api_token:  # noqa: S105 - an option value
                token_file = await self._upload_token(request)
            elif self.api_token_delivery == "file":  # noqa: S105 - an option value
                # FirecREST never answers an empty upload (408 after its command timeout).
                self.log.warning("No API token to deliver to job %s", self._job_name)
            env = self._job_env(token_file)
            self._pending_submit = (request, script, env)
            await self.submit_batch_script()
            self._set_phase("queued")
            await self._wait_until_running(deadline)
            host = await self._gethost()
            self._host = host
            self._set_phase("waiting")
            port = await self._wait_for_port(deadline)
            self._port = port
            # The wrapper reads (and deletes) the token file before it reports the port.
            self._token_file = ""
            self._set_phase("ready")
            self.log.info(
                "Job %s (%s) of %s runs the server on %s:%s",
                self.job_id,
                self._job_name,
                self.user.name,
                host,
                port,
            )
            return host, port
        except fc.SystemNotFound as e:
            self._set_phase("failed")
            await self._cleanup_failed_start(e)
            raise self._system_error(e) from None
        except BaseException as e:
            self._set_phase("failed")
            await self._cleanup_failed_start(e)
            raise
        finally:
            self._pending_submit = None
            if self.port_waiter is not None:
                self.port_waiter.close()
                self.port_waiter = None

    def _system_error(self, error: fc.SystemNotFound) -> errors.HTTPError:
        """The user's message for a system FirecREST does not know (site configuration)."""
        return spawn_error(
            f"The server cannot start: the cluster {error.system!r} is not known to "
            "FirecREST. Please contact the administrators.",
            reason="configuration",
            log_message=str(error),
            status_code=500,
        )

    def _set_phase(self, phase: str) -> None:
        self._phase = phase
        self._note_progress()

    def _note_progress(self) -> None:
        """Record a progress event when what the user should see has changed."""
        event = self._progress_event()
        if event is not None and (
            not self._progress_log or self._progress_log[-1]["message"] != event[1]
        ):
            progress, message, _ = event
            self._progress_log.append(
                {"progress": progress, "message": message, "html_message": html.escape(message)}
            )
        if self._progress_changed is not None:
            self._progress_changed.set()

    def clear_state_for_spawn(self) -> None:
        """Reset per-spawn memory (the hub already called clear_state)."""
        self._progress_log = []
        self._seen = False
        self._job = None
        self._submit_unknown = False
        self._host = ""
        self._port = 0
        self._log_path = ""
        self._token_file = ""

    async def _upload_token(self, request: SpawnRequest) -> str:
        client = await self._user_client()
        directory = f"{request.workdir.rstrip('/')}/.firecrestspawner"
        try:
            path = await client.write_private_file(
                request.system, directory, f"{self._job_name}.token", self.api_token
            )
        except SessionExpired as e:
            self.access_token_is_valid = False
            raise e.spawn_error() from None
        except fc.SystemNotFound:
            raise
        except Exception as e:  # noqa: BLE001 - reported to the user, not swallowed
            raise spawn_error(
                "The server cannot start: the access file for the job could not be "
                f"written in {directory} ({fc.error_message(e)}).",
                reason="token-file",
                log_message=f"Token file upload for {self._job_name} failed: {fc.describe(e)}",
                status_code=500,
            ) from None
        self._token_file = path
        return path

    async def _remove_token_file(self) -> None:
        """Delete the job's token file if the job never read it (best effort, logged).

        After a failed submit or an abandoned spawn the file would otherwise
        stay in the user's directory. The path is kept when removal fails, so
        ``stop()`` tries again.
        """
        path = self._token_file
        if not path:
            return
        try:
            client = await self._user_client()
            removed = await client.remove_file(self._current_system(), path)
        except Exception as e:  # noqa: BLE001 - logged; the spawn's outcome stands
            self.log.warning(
                "Could not remove the token file %s of job %s: %s",
                path,
                self._job_name,
                fc.describe(e),
            )
            return
        self._token_file = ""
        if removed:
            self.log.info("Removed the unused token file %s of job %s", path, self._job_name)

    async def submit_batch_script(self) -> None:
        """Submits the batch script that starts the notebook server job.

        It's called by spawner.start. The job id is set before anything else
        is awaited, so a failed or timed-out spawn can always cancel it.
        """
        if self._pending_submit is None:
            raise RuntimeError("submit_batch_script() is called by start()")
        request, script, env = self._pending_submit
        client = await self._user_client()
        self._submitted_at = time.time()
        self.log.info(
            "Submitting job %s for %s to %s", self._job_name, self.user.name, request.system
        )
        # Until FirecREST answers, a job may exist under our name (a timeout or
        # cancellation of start() can interrupt the request after it was sent).
        self._submit_unknown = True
        try:
            job_id = await client.submit(
                request.system,
                job_name=self._job_name,
                workdir=request.workdir,
                script=script,
                env=env,
            )
        except SessionExpired as e:
            self._submit_unknown = False
            self.access_token_is_valid = False
            raise e.spawn_error() from None
        except fc.SubmitRefused as e:
            self._submit_unknown = False
            raise spawn_error(
                f"The batch job was refused by the scheduler:\n{e.reason}",
                reason="submit-refused",
                log_message=f"Submit of {self._job_name} refused by sbatch: {e.reason}",
                status_code=400,
            ) from None
        except fc.SystemNotFound:
            self._submit_unknown = False
            raise
        except fc.SubmitOutcomeUnknown as e:
            raise spawn_error(
                "The batch job could not be submitted: FirecREST did not answer clearly "
                "and could not be asked whether the job exists. Please try again later.",
                reason="submit-unknown",
                log_message=str(e),
                status_code=503,
            ) from None
        except Exception as e:  # noqa: BLE001 - reported to the user, not swallowed
            # A definite answer (or a retry that proved the job absent): no job.
            self._submit_unknown = False
            raise spawn_error(
                f"The batch job could not be submitted: {fc.error_message(e)}",
                reason="submit-failed",
                log_message=f"Submit of {self._job_name} failed: {fc.describe(e)}",
                status_code=503 if fc.is_transient(e) else 400,
            ) from None
        # No await between here and the end of this method.
        self._submit_unknown = False
        self._ended = False
        self.job_id = job_id
        self.job_status = "PENDING"
        self._log_path = log_path(request.workdir, self._job_name)
        status_cache.get_status(request.firecrest_url, request.system).invalidate(job_id)
        self.log.info("Job %s (%s) submitted for %s", job_id, self._job_name, self.user.name)
        self._persist_state()

    def _persist_state(self) -> None:
        """Save the state now, not only when the spawn succeeds.

        JupyterHub persists ``get_state()`` after ``start()`` returns; a hub
        restart during a queued spawn would lose the job. With the state saved
        here, the restarted hub polls the job and stops (cancels) it.
        """
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:
            return
        session = object_session(orm_spawner)
        if session is None:
            return
        try:
            orm_spawner.state = self.get_state()
            session.commit()
        except Exception as e:  # noqa: BLE001 - the spawn goes on; the hub saves later
            session.rollback()
            self.log.warning("Could not save the state of %s early: %s", self._log_name, e)

    async def _wait_until_running(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.05, self.startup_poll_interval)
        while True:
            status = self._apply(await self._observe(max_age=self.startup_poll_interval))
            if status is JobStatus.RUNNING:
                return
            if status is JobStatus.NOTFOUND:
                await self._raise_job_ended("before the server started")
            if status is JobStatus.UNKNOWN:
                self.log.debug("Job %s status unknown: %s", self.job_id, self._last_error)
            remaining = deadline - loop.time()
            if remaining <= 0:
                # Our own deadline, whatever the job record says (even one we
                # cannot classify): the caller cancels the job.
                raise spawn_error(
                    f"Job {self.job_id} did not start within {self.start_timeout:.0f} s "
                    f"(last state: {self.job_status or self._last_error or 'unknown'}).",
                    reason="start-timeout",
                    status_code=500,
                )
            await asyncio.sleep(max(0.0, min(interval, remaining)))
            interval = min(interval * 1.5, max(self.startup_poll_max_interval, interval))

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

    async def _wait_for_port(self, deadline: float) -> int:
        """Wait for the port the job reports, checking the job between waits."""
        loop = asyncio.get_running_loop()
        assert self.port_waiter is not None  # noqa: S101 - set by start()
        interval = max(1.0, self.startup_poll_interval)
        check_file_at = loop.time() + self.token_file_check_delay
        while True:
            remaining = deadline - loop.time()
            try:
                return int(await self.port_waiter.wait(max(0.01, min(interval, remaining))))
            except (asyncio.TimeoutError, TimeoutError):
                pass
            except PortReportError as e:
                raise spawn_error(
                    f"Job {self.job_id} cannot serve the notebook: {e}",
                    reason="legacy-wrapper",
                    status_code=500,
                ) from None
            if self._token_file and loop.time() >= check_file_at:
                check_file_at = deadline  # once per spawn
                await self._check_token_file_read()
            if loop.time() >= deadline:
                raise spawn_error(
                    f"Job {self.job_id} runs on {self._host}, but the server did not report "
                    "its port in time.",
                    reason="port-timeout",
                    status_code=500,
                )
            status = self._apply(await self._observe(max_age=self.startup_poll_interval))
            if status is JobStatus.NOTFOUND:
                await self._raise_job_ended("before the server reported its port")
            interval = min(interval * 1.5, max(self.startup_poll_max_interval, 1.0))

    async def _check_token_file_read(self) -> None:
        """Fail the spawn when the running job never read its token file.

        ``firecrestspawner-singleuser`` deletes the file before anything else;
        still there after ``token_file_check_delay`` seconds of a running job
        means the job runs something else, most likely the existing project's
        wrapper, which reads only ``$JUPYTERHUB_API_TOKEN``.
        """
        try:
            client = await self._user_client()
            present = await client.file_exists(self._current_system(), self._token_file)
        except Exception as e:  # noqa: BLE001 - a courtesy check; the port wait goes on
            self.log.debug("Could not check the token file of %s: %s", self._job_name, e)
            return
        if present:
            raise spawn_error(
                f"Job {self.job_id} runs but never read its API token file: "
                + LEGACY_WRAPPER_HINT.format(
                    problem="cannot read the API token file",
                    setting="set c.FirecRESTSpawnerBase.api_token_delivery = 'env'",
                )
                + f" (Spawner.cmd must run {_WRAPPER} of this version.)",
                reason="legacy-wrapper",
                status_code=500,
            )

    async def _settle_final_state(self) -> None:
        """Read the job once or twice more while it is still COMPLETING.

        The final state and exit code make the failure message useful; the
        wait is short and bounded, and errors simply keep what we have.
        """
        for delay in (0.5, 1.0, 2.0):
            if states.phase(states.state_of(self._job or {})) is not states.Phase.ENDING:
                return
            await asyncio.sleep(delay)
            try:
                client = await self._user_client()
                job = await client.job(self._current_system(), self.job_id)
            except Exception as e:  # noqa: BLE001 - the message is a courtesy
                self.log.debug("Final state of job %s unknown: %s", self.job_id, fc.describe(e))
                return
            if job:
                self._job = job

    async def _raise_job_ended(self, when: str) -> None:
        await self._settle_final_state()
        job = self._job or {}
        state = states.state_of(job) or "gone"
        reason = states.reason_of(job)
        code = (job.get("status") or {}).get("exitCode")
        parts = [f"Job {self.job_id} ended {when}: state {state}"]
        if reason:
            parts.append(f"reason {reason}")
        if code is not None:
            parts.append(f"exit code {code}")
        message = ", ".join(parts) + "."
        tail = await self._log_tail()
        if tail:
            message += f"\nLast lines of {self._log_path}:\n{tail}"
        raise spawn_error(
            message,
            reason="job-ended",
            log_message=f"Job {self.job_id} ({self._job_name}) ended {when}: {state} {reason}",
            status_code=500,
        )

    async def _log_tail(self) -> str:
        """The escaped-later, redacted tail of the job's output ("" if unreadable)."""
        try:
            client = await self._user_client()
            meta = await client.metadata(self._current_system(), self.job_id)
            path = str((meta or {}).get("standardOutput") or "") or self._log_path
            if path:
                self._log_path = path
            if not self._log_path:
                return ""
            text = await client.tail(
                self._current_system(), self._log_path, _LOG_TAIL_LINES, _LOG_TAIL_BYTES
            )
        except Exception as e:  # noqa: BLE001 - the tail is a courtesy
            self.log.debug("No log tail for job %s: %s", self.job_id, fc.describe(e))
            return ""
        return redact(text).strip()

    async def _cleanup_failed_start(self, error: BaseException) -> None:
        """Cancel the job of a failed, timed-out or cancelled start (no orphans),
        then remove its token file if the job never read it."""
        await self._cancel_failed_start(error)
        if not self._token_file:
            return
        try:
            await asyncio.shield(
                asyncio.wait_for(self._remove_token_file(), self.firecrest_timeout * 2)
            )
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - logged; the original error is re-raised
            self.log.warning(
                "Could not remove the token file %s of job %s: %s",
                self._token_file,
                self._job_name,
                e,
            )

    async def _cancel_failed_start(self, error: BaseException) -> None:
        if not self.job_id and not self._submit_unknown:
            return
        if self.job_id and self._job is not None and states.is_gone(states.state_of(self._job)):
            return  # the job already ended: nothing to cancel
        what = "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"
        self.log.warning(
            "Start of %s %s; cancelling job %s (%s)",
            self._log_name,
            what,
            self.job_id or "?",
            self._job_name,
        )
        try:
            await asyncio.shield(asyncio.wait_for(self._cancel_any(), self.firecrest_timeout * 2))
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - logged; the original error is re-raised
            self.log.error(
                "Could not cancel job %s (%s) of %s after a failed start: %s",
                self.job_id or "?",
                self._job_name,
                self.user.name,
                e,
            )

    async def _cancel_any(self) -> None:
        if self.job_id:
            await self.cancel_batch_job()
        elif self._job_name and self._submit_unknown:
            await self._cancel_by_name()

    # ------------------------------------------------------------ stop

    async def _as_canceller(self, action: Any) -> Any:
        """Run ``action(client)`` as the user, or as the service account when the
        user's session has expired and ``stop_with_service_account`` allows it."""
        try:
            return await action(await self._user_client())
        except AuthError as e:
            self.access_token_is_valid = False
            if not (self.stop_with_service_account and self._service_account_configured()):
                raise
            self.log.info("Acting for %s through the service account: %s", self.user.name, e)
            return await action(await self._service_client())

    async def _cancel_by_name(self) -> None:
        """After an ambiguous submit: cancel whatever job carries our name."""
        system = self._current_system()

        name = self._job_name
        loop = asyncio.get_running_loop()
        # An interrupted submit may still create the job a moment later, and
        # Slurm may list a new job late: keep looking for a short while.
        deadline = loop.time() + self._client_settings().lookup_grace

        async def cancel_named(client: fc.FirecrestClient) -> None:
            delay = 0.5
            while True:
                jobs = await client.jobs_named(system, name)
                for job in jobs:
                    if states.is_gone(states.state_of(job)):
                        continue
                    try:
                        await client.cancel(system, str(job["jobId"]))
                    except fc.CancelNotAccepted:
                        continue
                    self.log.info("Cancelled job %s found by name %s", job["jobId"], name)
                if jobs or loop.time() >= deadline:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

        await self._as_canceller(cancel_named)

    async def cancel_batch_job(self) -> None:
        """Cancel the job running the notebook server (harmless if it already ended).

        A refused cancel (FirecREST 404/500) is checked with a fresh GET: an
        ended job is success, a job still queued or running is an error.
        """
        system = self._current_system()
        job_id = self.job_id
        self.log.info("Cancelling job %s (%s) on %s", job_id, self._job_name, system)
        cache = status_cache.get_status(self._current_url(), system)
        try:
            await self._as_canceller(lambda client: client.cancel(system, job_id))
        except fc.CancelNotAccepted as refused:
            cache.invalidate(job_id)
            status = self._apply(await self._observe(max_age=0))
            if status in (JobStatus.RUNNING, JobStatus.PENDING):
                raise spawn_error(
                    f"Job {job_id} could not be cancelled: {refused.message}",
                    reason="cancel-refused",
                    log_message=f"Cancel of job {job_id} refused: {refused}",
                    status_code=503,
                ) from None
            self.log.info("Job %s had already ended (%s)", job_id, self.job_status or "gone")
        finally:
            cache.invalidate(job_id)

    def _remember_orphan(self) -> None:
        orphan = {
            "job_id": self.job_id,
            "system": self._current_system(),
            "firecrest_url": self._current_url(),
            "job_name": self._job_name,
        }
        if orphan["job_id"] and orphan not in self._orphans:
            self._orphans.append(orphan)

    async def _cancel_orphans(self) -> None:
        """Cancel jobs whose earlier cancellation failed (best effort, bounded)."""
        for orphan in list(self._orphans):
            system, job_id = orphan["system"], orphan["job_id"]

            async def cancel(
                client: fc.FirecrestClient, system: str = system, job_id: str = job_id
            ) -> None:
                try:
                    await client.cancel(system, job_id)
                except fc.CancelNotAccepted:
                    job = await client.job(system, job_id)
                    if job is not None and not states.is_gone(states.state_of(job)):
                        raise

            try:
                client = await self._user_client(orphan["firecrest_url"])
                await asyncio.wait_for(cancel(client), self.firecrest_timeout * 2)
            except Exception as e:  # noqa: BLE001 - retried at the next start
                self.log.warning(
                    "Job %s (%s) of %s is still not cancelled: %s",
                    job_id,
                    orphan["job_name"],
                    self.user.name,
                    e,
                )
                continue
            self.log.info("Cancelled left-over job %s (%s)", job_id, orphan["job_name"])
            self._orphans.remove(orphan)

    async def stop(self, now: bool = False) -> None:
        """Stop the singleuser server job.

        Returns right after the cancellation when ``now``, otherwise waits (at
        most ``stop_timeout``) until the job is confirmed gone. Idempotent.
        A token file the job never read is removed.
        """
        try:
            await self._stop(now)
        finally:
            await self._remove_token_file()

    async def _stop(self, now: bool) -> None:
        if not self.job_id:
            if self._submit_unknown and self._job_name:
                try:
                    await self._cancel_by_name()
                except Exception as e:  # noqa: BLE001 - reported, not swallowed
                    raise spawn_error(
                        f"The job {self._job_name} may exist and could not be cancelled: "
                        f"{fc.error_message(e)}",
                        reason="cancel-failed",
                        log_message=f"Cancel by name of {self._job_name} failed: {fc.describe(e)}",
                        status_code=503,
                    ) from None
                self._submit_unknown = False
            return
        status = await self.query_job_status()
        if status is JobStatus.NOTFOUND:
            return
        try:
            await self.cancel_batch_job()
        except errors.HTTPError:
            self._remember_orphan()
            raise
        except Exception as e:  # noqa: BLE001 - reported to the user, not swallowed
            self._remember_orphan()
            raise spawn_error(
                f"Job {self.job_id} could not be cancelled: {fc.error_message(e)}",
                reason="cancel-failed",
                log_message=f"Cancel of job {self.job_id} failed: {fc.describe(e)}",
                status_code=503,
            ) from None
        if now:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        interval = 0.5
        while loop.time() < deadline:
            await asyncio.sleep(interval)
            status = self._apply(await self._observe(max_age=interval))
            if status is JobStatus.NOTFOUND:
                self.log.info("Job %s (%s) stopped", self.job_id, self._job_name)
                return
            interval = min(interval * 1.5, 5.0)
        self._remember_orphan()
        self.log.warning(
            "Job %s (%s) still %s %.0f s after cancelling",
            self.job_id,
            self._job_name,
            self.job_status or "unknown",
            self.stop_timeout,
        )

    # ------------------------------------------------------------ progress

    def _progress_event(self) -> tuple[int, str, str] | None:
        phase = self._phase
        log_note = f" Log: {self._log_path}" if self._log_path else ""
        if phase == "submitting":
            return 10, f"Submitting batch job {self._job_name} to {self._system}", ""
        if not self.job_id:
            return None
        if phase in ("queued", "waiting") and self._last_error:
            return 30, f"Job {self.job_id}: status unknown for now ({self._last_error})", ""
        if phase == "queued" and not self._seen:
            return 20, f"Submitted job {self.job_id} to {self._system}.{log_note}", ""
        job = self._job or {}
        if phase == "queued" and states.phase(states.state_of(job)) is states.Phase.QUEUED:
            reason = states.reason_of(job)
            text = f"Job {self.job_id} is pending in the queue"
            if reason:
                text += f" (reason: {reason})"
            start = (job.get("time") or {}).get("start")
            if isinstance(start, (int, float)) and start > time.time():
                when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(start))
                text += f"; expected start {when}"
            return 40, text + "." + log_note, ""
        if phase == "queued":
            nodes = str(job.get("nodes") or "")
            return 60, f"Job {self.job_id} is running on {nodes}.{log_note}", ""
        if phase == "waiting":
            return (
                80,
                f"Job {self.job_id} runs on {self._host}; waiting for the server.{log_note}",
                "",
            )
        return None

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Async generator that yields status messages reflecting the progress of a job.

        Read from what start() observes (the shared cache): no FirecREST call
        of its own. ``message`` is plain text, ``html_message`` is escaped.
        """
        sent = 0
        if self._progress_changed is None:
            self._progress_changed = asyncio.Event()
        while True:
            self._progress_changed.clear()
            while sent < len(self._progress_log):
                yield dict(self._progress_log[sent])
                sent += 1
            if self._phase in ("ready", "failed"):
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress_changed.wait(), 1.0)


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


class FirecRESTSpawnerRegexStates(FirecRESTSpawnerBase):
    """Uses config-supplied regular expressions to interact with the batch submission system state.

    ``job_status`` is ``"<STATE> <nodes>"``; ``state_pending_re``,
    ``state_running_re`` and ``state_unknown_re`` classify it, and
    ``state_exechost_re`` / ``state_exechost_exp`` extract the host.
    """

    state_pending_re = Unicode(
        states.DEFAULT_PENDING_RE,
        help="""Regex that matches job_status if job is waiting to run""",
    ).tag(config=True)

    state_running_re = Unicode(
        states.DEFAULT_RUNNING_RE,
        help="""Regex that matches job_status if job is running.

        A state the scheduler reports as ending or finished (COMPLETING,
        COMPLETED, ...) counts as ended even if this regex matches it.
        """,
    ).tag(config=True)

    state_unknown_re = Unicode(
        states.DEFAULT_UNKNOWN_RE,
        help="""Regex that matches job_status if the resource manager is not answering.

        Blank indicates not used. A match keeps the job (poll() returns None).
        """,
    ).tag(config=True)

    state_exechost_re = Unicode(
        states.DEFAULT_EXECHOST_RE,
        help="""Regex with at least one capture group that extracts the execution host from job_status output.

        The captured text may be a Slurm hostlist; its first node is used.
        """,
    ).tag(config=True)

    state_exechost_exp = Unicode(
        "",
        help="""If empty, notebook IP will be set to the contents of the first capture group.

        If this variable is set, the match object will be expanded using this
        string to obtain the notebook IP. See Python docs: re.match.expand
        """,
    ).tag(config=True)

    node_name_template = Unicode(
        "",
        help="""A template for the DNS name of the node, e.g. ``"{}.cluster.example.org"``.

        Formatted with ``str.format`` on the first node of the job; empty uses
        the node name as it is.
        """,
    ).tag(config=True)

    custom_state_gethost = AnyTrait(
        "",
        help="""A custom function to get the name or ip of the node where the single-user server is running.

        An (async) callable ``(spawner) -> str``; replaces the regex and
        ``node_name_template``.
        """,
    ).tag(config=True)

    def _state_regexes(self) -> StateRegexes:
        return StateRegexes(
            pending=self.state_pending_re,
            running=self.state_running_re,
            unknown=self.state_unknown_re,
            exechost=self.state_exechost_re,
            exechost_exp=self.state_exechost_exp,
        )

    def _regex(self, name: str) -> str:
        # Profile mode may bring its own regexes with the request.
        if self._profile:
            return str(getattr(self._regexes, name))
        return str(getattr(self, f"state_{name}_re"))

    def state_ispending(self) -> bool:
        """Return boolean indicating if job is still waiting to run, likely by parsing self.job_status."""
        return states.is_pending(self.job_status, self._regex("pending"))

    def state_isrunning(self) -> bool:
        """Return boolean indicating if job is running, likely by parsing self.job_status."""
        return states.is_running(self.job_status, self._regex("running"))

    def state_isunknown(self) -> bool | None:
        """Return boolean indicating if job state retrieval failed because of the resource manager."""
        return states.is_unknown(self.job_status, self._regex("unknown"))

    async def state_gethost(self) -> str:  # type: ignore[override]
        """Return string, hostname or addr of running job, likely by parsing self.job_status."""
        if self.custom_state_gethost:
            result = self.custom_state_gethost(self)
            if inspect.isawaitable(result):
                result = await result
            return str(result or "")
        if self._profile:
            exechost, exp = self._regexes.exechost, self._regexes.exechost_exp
        else:
            exechost, exp = self.state_exechost_re, self.state_exechost_exp
        node = states.gethost(self.job_status, exechost, exp)
        if not node:
            return ""
        return self.node_name_template.format(node) if self.node_name_template else node


class SlurmSpawner(FirecRESTSpawnerRegexStates):
    """Implementation of the FirecRESTSpawner for Slurm."""

    batch_script = Unicode(
        help="""Template for the Slurm job script (Jinja2 or ``str.format``).

        The default is the built-in ``slurm`` template: job name, output file
        ``<workdir>/<job_name>.log``, one ``#SBATCH`` line per non-empty
        ``req_*`` resource, then ``prologue``, ``srun cmd`` and ``epilogue``.
        The API token is never part of the script.
        """,
    ).tag(config=True)

    @default("batch_script")
    def _default_batch_script(self) -> str:
        return builtin_template("slurm")

    req_cluster = Unicode("", help="""Cluster name to submit job to resource manager""").tag(
        config=True
    )
    req_qos = Unicode("", help="""QoS name to submit job to resource manager""").tag(config=True)
    req_srun = Unicode(
        "srun",
        help="""Set req_srun='' to disable running in job step, and note that this affects environment handling.

        This is effectively a prefix for the singleuser command.
        """,
    ).tag(config=True)
    req_reservation = Unicode("", help="""Reservation name to submit to resource manager""").tag(
        config=True
    )
    req_gres = Unicode("", help="""Additional resources (e.g. GPUs) requested""").tag(config=True)
    req_submitenv = Unicode("", help="""Submit environment""").tag(config=True)
    req_constraint = Unicode("", help="""Specify the constraint""").tag(config=True)


__all__ = [
    "AuthorizationCodeFlowAuth",
    "FirecRESTSpawnerBase",
    "FirecRESTSpawnerRegexStates",
    "JobStatus",
    "SlurmSpawner",
    "format_template",
]

# The one documented import side effect: the port-only API handler.
register_api_handler()
