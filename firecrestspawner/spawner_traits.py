"""The configurable traits of :class:`~firecrestspawner.spawner.FirecRESTSpawnerBase`.

Declared here, as one trait group, so that the spawner module holds the
life cycle only; every trait is configured on the spawner classes as before
(``c.SlurmSpawner.firecrest_url``, ``c.Spawner.start_timeout``). The
``@default`` methods read the hub's environment or authenticator when a
spawner is created, never at import.
"""

from __future__ import annotations

import os

from jupyterhub.traitlets import Command
from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode, Union, default
from traitlets.config import Configurable

WRAPPER = "firecrestspawner-singleuser"


class FirecRESTSpawnerTraits(Configurable):
    """Configuration of the FirecREST spawners (FirecREST, credentials, timing, job, ``req_*``).

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
        [WRAPPER, "jupyterhub-singleuser"],
        allow_none=True,
        help="""The command run inside the batch job (JupyterHub's ``Spawner.cmd``).

        Keep ``firecrestspawner-singleuser`` first: it picks a free port on the
        node, reports it to the hub and, with ``api_token_delivery = "file"``,
        loads the API token from its private file. The port stays reserved
        until the server listens, so the server must bind with
        ``SO_REUSEADDR`` (``jupyterhub-singleuser`` does); for one that does
        not, set ``FIRECRESTSPAWNER_RESERVE_PORT=0`` in ``environment``.
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

        A submit is repeated under the same name only when FirecREST provably
        did not act on it (429, 502, 503, connection refused). After an
        answer that was lost, the job is looked up by its unique name for
        ``not_found_grace_period`` seconds and adopted if found; if it never
        shows up, the next attempt uses a new name and token file, and the
        old name is kept to cancel should a job appear under it.
        """,
    ).tag(config=True)

    default_account_ttl = Float(
        600.0,
        help="""Seconds a user's default Slurm account (FirecREST's ``userinfo``)
        is reused by later spawns without asking again; 0 asks at every spawn.

        A default account changed in Slurm reaches spawns after at most this
        long; a profile or option that sets ``account`` never asks.
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
        return str(getattr(getattr(self, "authenticator", None), "token_url", "") or "")

    client_id = Unicode(
        help="""OAuth client id used to refresh the user's tokens.

        Defaults to the authenticator's ``client_id``.
        """,
    ).tag(config=True)

    @default("client_id")
    def _default_client_id(self) -> str:
        return str(getattr(getattr(self, "authenticator", None), "client_id", "") or "")

    client_secret = Unicode(
        help="""OAuth client secret used to refresh the user's tokens.

        Defaults to the authenticator's ``client_secret``.
        """,
    ).tag(config=True)

    @default("client_secret")
    def _default_client_secret(self) -> str:
        return str(getattr(getattr(self, "authenticator", None), "client_secret", "") or "")

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
        seen, "not found" means it ended. Also how long a job is looked up by
        its name after a submit whose answer was lost.
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
        user = getattr(self, "user", None)
        return user.name if user else ""

    req_homedir = Unicode(
        "", help="""Home directory template variable (``homedir``); empty unless configured."""
    ).tag(config=True)


__all__ = ["WRAPPER", "FirecRESTSpawnerTraits"]
