"""The doctor's checks, in the order a spawn depends on them.

Each check adds one :class:`~.report.Step`; a check whose prerequisite failed
is skipped with the name of that prerequisite, so the first failure is the
one to fix. FirecREST is reached only through :class:`FirecrestClient`
(timeouts, bounded retries); the identity provider through :mod:`..auth`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..auth import AuthError, AuthorizationCodeFlowAuth, ServiceAccountAuth, SessionExpired
from ..client import ClientSettings, FirecrestClient, describe, http_status
from ..profiles import ProfileDirectory, ProfileSet
from ..redact import register_secret
from .jobs import check_operator
from .nodes import check_node_names
from .probe import run_probe
from .report import Report, Status, Step
from .settings import HubSettings, job_workdir, setting_name

#: The environment variable the user's token is read from by default.
TOKEN_ENV = "FIRECRESTSPAWNER_DOCTOR_TOKEN"  # noqa: S105 - a variable name


@dataclass
class DoctorOptions:
    """What the command line asks for (``user_token`` is a secret: never printed)."""

    user: str = ""
    user_token: str = field(default="", repr=False)
    token_kind: str = "refresh"  # noqa: S105 - a kind, not a token
    groups: tuple[str, ...] = ()
    probe: bool = False
    profile: str = ""
    probe_timeout: float | None = None
    callback_host: str = ""
    timeout: float = 10.0
    max_nodes: int = 50


@dataclass(frozen=True)
class Target:
    """One system at one FirecREST URL, and the profiles that use it."""

    url: str
    system: str
    profiles: tuple[str, ...] = ()


class _AccessToken:
    """A user's access token given as is (``--token-kind access``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}


class Doctor:
    """Runs the checks against one hub configuration; :meth:`run` returns the report."""

    def __init__(self, settings: HubSettings, options: DoctorOptions) -> None:
        self.settings = settings
        self.sp = settings.spawner
        self.options = options
        self.report = Report(settings.path)
        self.nonce = secrets.token_hex(4)
        self.profile_set: ProfileSet | None = None
        self.targets: list[Target] = []
        self.reachable: set[str] = set()
        self.healthy: set[tuple[str, str]] = set()
        self.sa_ok = False
        self.user_ok = False
        self.sa_unix_user: dict[str, str] = {}
        self._clients: dict[tuple[str, str], FirecrestClient] = {}
        self._sa_auth: ServiceAccountAuth | None = None
        self._user_auth: Any = None
        for secret in (
            options.user_token,
            str(self.sp.service_account_client_secret or ""),
            str(self.sp.client_secret or ""),
        ):
            if secret:
                register_secret(secret)

    # ------------------------------------------------------------ plumbing

    def client_settings(self) -> ClientSettings:
        timeout = max(1.0, min(float(self.sp.firecrest_timeout), self.options.timeout))
        return ClientSettings(
            request_timeout=timeout,
            connect_timeout=min(10.0, timeout),
            read_attempts=2,
            read_deadline=timeout * 2.5,
            backoff_initial=0.2,
            backoff_max=1.0,
            backoff_jitter=0.2,
            max_retry_after=min(float(self.sp.firecrest_max_retry_after), 5.0),
            lookup_grace=15.0,
            api_version=str(self.sp.firecrest_api_version or ""),
            verify=self.sp.firecrest_verify,
        )

    def sa_client(self, url: str) -> FirecrestClient | None:
        if self._sa_auth is None or not self.sa_ok:
            return None
        return self._client(url, "sa", self._sa_auth)

    def user_client(self, url: str) -> FirecrestClient | None:
        if self._user_auth is None or not self.user_ok:
            return None
        return self._client(url, "user", self._user_auth)

    def any_client(self, url: str) -> FirecrestClient | None:
        return self.sa_client(url) or self.user_client(url)

    def _client(self, url: str, kind: str, auth: Any) -> FirecrestClient:
        key = (url, kind)
        if key not in self._clients:
            self._clients[key] = FirecrestClient(url, auth, self.client_settings())
        return self._clients[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def name(self, trait: str) -> str:
        return setting_name(self.sp, trait)

    # ------------------------------------------------------------ run

    async def run(self) -> Report:
        """Every check in order; never raises for what it finds."""
        try:
            self.check_config()
            if self.targets:
                await self.check_firecrest()
                await self.check_service_account()
                await self.check_systems()
                await self.check_sa_jobs()
                await self.check_user()
                await self.check_workdir()
                await check_operator(self)
                await check_node_names(self)
                if self.options.probe:
                    await run_probe(self)
        finally:
            await self.close()
        return self.report

    # ------------------------------------------------------------ configuration

    def check_config(self) -> None:
        sp = self.sp
        lines = [
            f"spawner {self.settings.spawner_class.__name__}, "
            + ("profile mode" if self.settings.profile_mode else "classic mode (no profiles_dir)"),
            f"hub API URL given to jobs: {self.settings.hub_api_url}",
        ]
        url = str(sp.firecrest_url or "")
        if self.settings.profile_mode:
            step = self._load_profiles(url)
            if step is not None:
                self.report.add(Step("config", "Hub configuration", "pass", "\n".join(lines)))
                self.report.add(step)
                return
        else:
            if not url:
                self.report.add(
                    Step(
                        "config",
                        "Hub configuration",
                        "fail",
                        "\n".join([*lines, "no FirecREST URL"]),
                        f"set {self.name('firecrest_url')} (or $FIRECREST_URL in the hub's "
                        "environment) to FirecREST's API root",
                    )
                )
                return
            if not sp.req_host:
                self.report.add(
                    Step(
                        "config",
                        "Hub configuration",
                        "fail",
                        "\n".join([*lines, "no system: req_host is empty"]),
                        f"set {self.name('req_host')} to the FirecREST system name",
                    )
                )
                return
            self.targets = [Target(url.rstrip("/"), str(sp.req_host))]
        lines.append("systems: " + ", ".join(f"{t.system} at {t.url}" for t in self.targets))
        self.report.add(Step("config", "Hub configuration", "pass", "\n".join(lines)))
        if self.settings.profile_mode:
            ps = self.profile_set
            assert ps is not None  # noqa: S101 - set by _load_profiles
            self.report.add(
                Step(
                    "profiles",
                    "Site profiles",
                    "pass",
                    f"{len(ps)} profile(s) in {sp.profiles_dir}: {', '.join(ps.ids)}",
                )
            )

    def _load_profiles(self, default_url: str) -> Step | None:
        """Load the profiles and set the targets; a failing step, or None."""
        directory = str(self.sp.profiles_dir)
        fix_dir = f"fix the files (`firecrestspawner validate {directory}` lists every problem)"
        try:
            ps = ProfileDirectory(directory).current()
        except Exception as e:  # noqa: BLE001 - a missing or unreadable directory
            return Step(
                "profiles",
                "Site profiles",
                "fail",
                f"cannot read {directory}: {e}",
                f"set {self.name('profiles_dir')} to the directory of the profile files",
            )
        self.profile_set = ps
        if ps.errors:
            return Step(
                "profiles",
                "Site profiles",
                "fail",
                "\n".join(str(e) for e in ps.errors),
                fix_dir,
            )
        if not len(ps):
            return Step(
                "profiles",
                "Site profiles",
                "fail",
                f"no profile in {directory}",
                f"add profile files (*.yaml, *.toml) or fix {self.name('profiles_dir')}",
            )
        targets: dict[tuple[str, str], list[str]] = {}
        missing_url = [p.id for p in ps if not (p.firecrest_url or default_url)]
        if missing_url:
            return Step(
                "profiles",
                "Site profiles",
                "fail",
                f"no FirecREST URL for profile(s) {', '.join(missing_url)}",
                f"set {self.name('firecrest_url')} (or $FIRECREST_URL), or firecrest_url "
                "in the profile file",
            )
        for p in ps:
            url = str(p.firecrest_url or default_url).rstrip("/")
            targets.setdefault((url, p.system), []).append(p.id)
        self.targets = [Target(u, s, tuple(ids)) for (u, s), ids in targets.items()]
        return None

    # ------------------------------------------------------------ FirecREST

    async def check_firecrest(self) -> None:
        from ..client import tls_context

        lines, failures = [], []
        urls = list(dict.fromkeys(t.url for t in self.targets))
        async with httpx.AsyncClient(
            timeout=self.options.timeout, verify=tls_context(self.sp.firecrest_verify)
        ) as http:
            for url in urls:
                probe = f"{url}/status/liveness/"
                try:
                    r = await http.get(probe)
                except httpx.HTTPError as e:
                    failures.append(f"{probe}: {type(e).__name__}: {e}")
                    continue
                if r.status_code != 200:
                    failures.append(f"{probe} answered HTTP {r.status_code}")
                    continue
                version = r.headers.get("F7T-AppVersion") or "not reported"
                self.reachable.add(url)
                lines.append(f"{url}: reachable, version {version}")
        if failures:
            self.report.add(
                Step(
                    "firecrest",
                    "FirecREST reachable",
                    "fail",
                    "\n".join([*lines, *failures]),
                    f"check {self.name('firecrest_url')} (or $FIRECREST_URL, or the profile's "
                    "firecrest_url): it must be FirecREST's API root, reachable from the "
                    "hub's host (DNS, firewall, HTTP proxy, TLS: "
                    f"{self.name('firecrest_verify')})",
                    {"unreachable": failures},
                )
            )
        else:
            self.report.add(Step("firecrest", "FirecREST reachable", "pass", "\n".join(lines)))

    # ------------------------------------------------------------ service account

    async def check_service_account(self) -> None:
        sp = self.sp
        cid = str(sp.service_account_client_id or "")
        secret = str(sp.service_account_client_secret or "")
        url = str(sp.service_account_token_url or "")
        if not cid:
            relied = [n for n in ("polling_with_service_account", "stop_with_service_account")
                      if getattr(sp, n)]  # fmt: skip
            self.report.add(
                Step(
                    "sa-token",
                    "Service account token grant",
                    "warn",
                    "no service account configured: every server polls FirecREST with its "
                    "user's token, and a server whose user's login expired cannot be stopped"
                    + (f" ({', '.join(relied)} is on but has no effect)" if relied else ""),
                    f"set {self.name('service_account_client_id')}, "
                    f"{self.name('service_account_client_secret')} and "
                    f"{self.name('service_account_token_url')} (or $SA_CLIENT_ID, "
                    "$SA_CLIENT_SECRET, $SA_AUTH_TOKEN_URL)",
                )
            )
            return
        missing = [
            n
            for n, v in (
                ("service_account_client_secret", secret),
                ("service_account_token_url", url),
            )
            if not v
        ]
        if missing:
            self.report.add(
                Step(
                    "sa-token",
                    "Service account token grant",
                    "fail",
                    f"client id {cid!r} is set but {', '.join(missing)} is empty",
                    "set "
                    + " and ".join(self.name(n) for n in missing)
                    + " (or $SA_CLIENT_SECRET / $SA_AUTH_TOKEN_URL)",
                )
            )
            return
        auth = ServiceAccountAuth(cid, secret, url, timeout=self.options.timeout, retry_attempts=2)
        try:
            await auth.get_access_token_async()
        except AuthError as e:
            refused = "refused" in str(e)
            self.report.add(
                Step(
                    "sa-token",
                    "Service account token grant",
                    "fail",
                    str(e),
                    (
                        f"check {self.name('service_account_client_secret')} (or "
                        f"$SA_CLIENT_SECRET): the identity provider refuses the client "
                        f"credentials of {cid!r}; also check that the client may use the "
                        "client-credentials grant (service accounts enabled)"
                    )
                    if refused
                    else f"check {self.name('service_account_token_url')} (or "
                    "$SA_AUTH_TOKEN_URL) and that the identity provider is reachable "
                    "from the hub's host",
                )
            )
            return
        self._sa_auth = auth
        self.sa_ok = True
        self.report.add(
            Step(
                "sa-token",
                "Service account token grant",
                "pass",
                f"client {cid!r} obtained an access token from {url}",
            )
        )

    # ------------------------------------------------------------ systems

    async def check_systems(self) -> None:
        lines, problems, fixes = [], [], []
        for url in dict.fromkeys(t.url for t in self.targets):
            client = self.any_client(url) if url in self.reachable else None
            wanted = [t.system for t in self.targets if t.url == url]
            if client is None:
                continue
            try:
                systems = await client.read("systems", client.raw.systems)
                version = await client.read("server_version", client.raw.server_version)
            except Exception as e:  # noqa: BLE001 - reported
                problems.append(f"{url}: cannot list systems: {describe(e)}")
                fixes.append(self._auth_fix(e, "the service account"))
                continue
            lines.append(f"{url}: FirecREST version {version or 'not reported'}")
            by_name = {str(s.get("name")): s for s in systems}
            for name in wanted:
                system = by_name.get(name)
                if system is None:
                    problems.append(
                        f"{url} has no system {name!r} (it has: {', '.join(sorted(by_name))})"
                    )
                    fixes.append(
                        f"set {self.name('req_host')} or the profile's system to one of "
                        f"{', '.join(sorted(by_name))}"
                    )
                    continue
                health = system.get("servicesHealth")
                if not health:
                    lines.append(f"{name}: health not checked yet by FirecREST")
                    self.healthy.add((url, name))
                    continue
                bad = [h for h in health if not h.get("healthy")]
                if bad:
                    problems.append(
                        f"{name}: unhealthy: "
                        + "; ".join(
                            f"{h.get('serviceType')}"
                            + (f" ({h.get('path')})" if h.get("path") else "")
                            + f": {h.get('message') or 'unhealthy'}"
                            for h in bad
                        )
                    )
                    fixes.append(
                        f"FirecREST reports {name} unhealthy: spawns on it fail until it "
                        "recovers; ask the FirecREST/cluster operators (the scheduler, SSH "
                        "and file systems FirecREST probes), or remove the system from the "
                        "profiles"
                    )
                    continue
                self.healthy.add((url, name))
                lines.append(
                    f"{name}: healthy ("
                    + ", ".join(str(h.get("serviceType")) for h in health)
                    + ")"
                )
        status: Status
        if problems:
            status = "fail"
        elif not lines:
            self.report.add(
                Step(
                    "systems",
                    "Systems healthy",
                    "skip",
                    "needs FirecREST reachable and a credential (service account or --user)",
                )
            )
            return
        else:
            status = "pass"
        self.report.add(
            Step(
                "systems",
                "Systems healthy",
                status,
                "\n".join([*lines, *problems]),
                "\n".join(dict.fromkeys(fixes)),
            )
        )

    def _auth_fix(self, exc: BaseException, who: str) -> str:
        status = http_status(exc)
        if status in (401, 403):
            return (
                f"FirecREST refuses the token of {who} (HTTP {status}): FirecREST must "
                "trust the identity provider that issued it (its JWKS, issuer, audience "
                "and username claim)"
            )
        return "see the error above; FirecREST's own log has the details"

    # ------------------------------------------------------------ service account rights

    async def check_sa_jobs(self) -> None:
        title = "Service account lists all users' jobs"
        if not self.sa_ok:
            self.report.add(Step("sa-list", title, "skip", "needs the service account token"))
            return
        lines, problems = [], []
        for t in self.targets:
            if (t.url, t.system) not in self.healthy:
                continue
            client = self.sa_client(t.url)
            assert client is not None  # noqa: S101
            try:
                info = await client.userinfo(t.system)
                self.sa_unix_user[t.system] = str((info.get("user") or {}).get("name") or "")
                jobs = await client.jobs(t.system, allusers=True)
            except Exception as e:  # noqa: BLE001 - reported
                problems.append(f"{t.system}: {describe(e)}")
                continue
            owners = {str(j.get("user") or "") for j in jobs}
            lines.append(
                f"{t.system}: as Unix user {self.sa_unix_user[t.system] or '?'}, "
                f"{len(jobs)} job(s) of {len(owners - {''})} user(s) listed"
            )
        if problems:
            self.report.add(
                Step(
                    "sa-list",
                    title,
                    "fail",
                    "\n".join([*lines, *problems]),
                    "the service account must map to a cluster account FirecREST can run "
                    "commands as (its SSH credentials / key for that user), allowed to "
                    "list every user's jobs (`squeue`/`sacct --allusers`)",
                )
            )
            return
        if not lines:
            self.report.add(Step("sa-list", title, "skip", "no healthy system"))
            return
        self.report.add(Step("sa-list", title, "pass", "\n".join(lines)))

    # ------------------------------------------------------------ the user

    async def check_user(self) -> None:
        title = "User credential"
        o = self.options
        if not o.user:
            self.report.add(
                Step(
                    "user-credential",
                    title,
                    "skip",
                    f"no --user given (with its token in ${TOKEN_ENV} or --user-token-file); "
                    "the working directory, operator and probe checks need it",
                )
            )
            return
        if not o.user_token:
            self.report.add(
                Step(
                    "user-credential",
                    title,
                    "fail",
                    f"no token for {o.user}",
                    f"put a refresh token of {o.user} in ${TOKEN_ENV} or a file given with "
                    "--user-token-file (an access token with --token-kind access)",
                )
            )
            return
        sp = self.sp
        if o.token_kind == "access":  # noqa: S105 - a kind
            auth: Any = _AccessToken(o.user_token)
            how = "the access token given"
        else:
            auth = AuthorizationCodeFlowAuth(
                str(sp.client_id or ""),
                str(sp.client_secret or ""),
                o.user_token,
                str(sp.token_url or ""),
                timeout=o.timeout,
                retry_attempts=2,
            )
            how = f"a refresh-token grant at {sp.token_url} as client {sp.client_id!r}"
            try:
                await auth.get_access_token_async()
            except SessionExpired as e:
                self.report.add(
                    Step(
                        "user-credential",
                        title,
                        "fail",
                        f"the identity provider refused the refresh token of {o.user}: {e.detail}",
                        "give a current refresh token of this user (a new login); with "
                        "--token-kind access, give an access token instead",
                    )
                )
                return
            except AuthError as e:
                self.report.add(
                    Step(
                        "user-credential",
                        title,
                        "fail",
                        str(e),
                        f"check {self.name('token_url')}, {self.name('client_id')} and "
                        f"{self.name('client_secret')} (they default to the authenticator's): "
                        "the hub refreshes users' tokens with them",
                    )
                )
                return
        lines, problems, fixes = [f"token obtained by {how}"], [], []
        for t in self.targets:
            if t.url not in self.reachable:
                continue
            client = self._client(t.url, "user", auth)
            try:
                info = await client.userinfo(t.system)
            except Exception as e:  # noqa: BLE001 - reported
                problems.append(f"{t.system}: {describe(e)}")
                fixes.append(self._auth_fix(e, o.user))
                continue
            unix = (info.get("user") or {}).get("name") or "?"
            groups = [g.get("name") for g in info.get("groups") or [] if isinstance(g, dict)]
            lines.append(
                f"{t.system}: FirecREST accepts it as Unix user {unix}"
                + (f" (groups: {', '.join(str(g) for g in groups[:8])})" if groups else "")
            )
        self._user_auth = auth
        if problems:
            self.report.add(
                Step(
                    "user-credential",
                    title,
                    "fail",
                    "\n".join([*lines, *problems]),
                    "\n".join(dict.fromkeys(fixes)),
                )
            )
            return
        self.user_ok = True
        self.report.add(Step("user-credential", title, "pass", "\n".join(lines)))

    # ------------------------------------------------------------ working directory

    async def check_workdir(self) -> None:
        title = "Working directory writable"
        if not self.user_ok:
            self.report.add(Step("workdir", title, "skip", "needs the user credential (--user)"))
            return
        lines, problems = [], []
        done: set[tuple[str, str, str]] = set()
        for t in self.targets:
            if (t.url, t.system) not in self.healthy:
                continue
            for workdir in self._workdirs(t):
                if (t.url, t.system, workdir) in done:
                    continue
                done.add((t.url, t.system, workdir))
                client = self.user_client(t.url)
                assert client is not None  # noqa: S101
                directory = f"{workdir.rstrip('/')}/.firecrestspawner"
                try:
                    path = await client.write_private_file(
                        t.system, directory, f"doctor-{self.nonce}", "firecrestspawner doctor\n"
                    )
                    await client.remove_file(t.system, path)
                except Exception as e:  # noqa: BLE001 - reported
                    problems.append(f"{t.system}:{workdir}: {describe(e)}")
                    continue
                lines.append(
                    f"{t.system}:{workdir}: {self.options.user} can create a private "
                    "file in .firecrestspawner/ (where the API token file goes)"
                )
        if problems:
            source = (
                "the system's workdir in the profile file"
                if self.settings.profile_mode
                else self.name("workdir")
            )
            self.report.add(
                Step(
                    "workdir",
                    title,
                    "fail",
                    "\n".join([*lines, *problems]),
                    f"the job runs in <workdir>/<user> ({source}): create it for each user "
                    "(owned by them), or point it at a file system where users can write",
                )
            )
        elif lines:
            self.report.add(Step("workdir", title, "pass", "\n".join(lines)))
        else:
            self.report.add(Step("workdir", title, "skip", "no healthy system"))

    def _workdirs(self, t: Target) -> list[str]:
        """The user's job directories on ``t``: one per distinct profile workdir."""
        user = self.options.user
        if self.profile_set is None:
            return [job_workdir(self.sp, user)]
        found = []
        for profile_id in t.profiles:
            profile = self.profile_set.get(profile_id)
            if profile is not None:
                found.append(job_workdir(self.sp, user, profile.workdir))
        return list(dict.fromkeys(found))


__all__ = ["TOKEN_ENV", "Doctor", "DoctorOptions", "Target"]
