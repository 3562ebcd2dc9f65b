"""What one spawn submits, decided before any FirecREST call (pure).

Classic mode builds a :class:`SpawnRequest` from the spawner's traits; profile
mode builds it from a validated profile choice. Everything after that point
(render, submit, poll, stop) depends only on this object, so both modes share
one code path and the request can be tested without a hub.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .profiles.options import IGNORED_KEYS, ValidatedOptions
from .profiles.script import (
    ADMIN_FRAGMENTS,
    BUILTIN_REQ_NAMES,
    forbidden_char,
    render_batch_script,
    trusted_variables,
)
from .states import StateRegexes


@dataclass(frozen=True)
class SpawnRequest:
    """One batch submission, fully resolved.

    ``variables`` are the batch-template variables (read-only); ``template``
    is the template text they are rendered into; ``workdir`` the job's
    working directory on ``system``.
    """

    system: str
    firecrest_url: str
    template: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    workdir: str = ""
    regexes: StateRegexes = field(default_factory=StateRegexes)
    #: Profile id in profile mode, "" in classic mode.
    profile: str = ""
    scheduler: str = "slurm"
    #: Variables whose values the user chose (or the cluster supplied): they
    #: are never trusted, whatever their name.
    user_set: frozenset[str] = frozenset()
    #: Profile mode: the validated options the request came from. The script
    #: is then rendered by ``options.render_script``, the function
    #: ``firecrestspawner render`` calls, so the two cannot disagree.
    options: ValidatedOptions | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.system:
            raise ValueError("SpawnRequest.system (the FirecREST system name) is empty")
        if not self.firecrest_url:
            raise ValueError("SpawnRequest.firecrest_url is empty")
        if not self.template.strip():
            raise ValueError("SpawnRequest.template (the batch script) is empty")
        object.__setattr__(self, "variables", types.MappingProxyType(dict(self.variables)))

    def with_variables(self, **updates: Any) -> SpawnRequest:
        """A copy with some template variables replaced (e.g. the job name)."""
        return dataclasses.replace(self, variables={**self.variables, **updates})

    def trusted(self, variables: Mapping[str, Any] | None = None) -> frozenset[str]:
        """The variables exempt from the script's value checks: see :func:`trusted_variables`."""
        return trusted_variables(self.variables if variables is None else variables, self.user_set)


def render_request(
    request: SpawnRequest, *, job_name: str, username: str, cmd: str = "", account: str = ""
) -> str:
    """The batch script of a spawn, with the injection checks.

    ``account`` is the user's default account, used when nothing else set
    one (a value from the cluster: checked like a user's). Profile mode
    renders through :meth:`ValidatedOptions.render_script` with the same
    arguments as ``firecrestspawner render``; classic mode through
    :func:`render_batch_script` with the request's trust rule. Raises
    ``OptionError`` (profile mode, naming the option), ``ScriptRejected`` or
    ``ScriptTemplateError``.
    """
    extra: dict[str, Any] = {"username": username}
    if request.options is not None:
        if account and not request.options.req.get("account"):
            extra["account"] = account
        return request.options.render_script(
            cmd=str(request.variables.get("cmd") or cmd),
            job_name=job_name,
            workdir=request.workdir,
            extra=extra,
        )
    variables = dict(request.variables)
    variables.setdefault("cmd", cmd)
    variables.setdefault("host", request.system)
    variables.setdefault("username", username)
    for name in BUILTIN_REQ_NAMES:
        variables.setdefault(name, "")
    variables["job_name"] = job_name
    variables["workdir"] = request.workdir
    user_set = request.user_set
    if not variables.get("account") and account:
        variables["account"] = account
        user_set = user_set | {"account"}
    return render_batch_script(
        request.template,
        variables,
        name=f"profile {request.profile}" if request.profile else "batch_script",
        trusted=trusted_variables(variables, user_set),
    )


class FormValue(str):
    """A classic-mode template value: a string that also answers ``[0]`` with itself.

    The existing firecrestspawner passed form values as one-element lists, so
    site templates write ``{{ runtime[0] }}``; configured values are plain
    strings, written ``{{ partition }}``. A ``FormValue`` serves both: ``[0]``
    is the whole value (never its first character), anything else is ``str``.
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        if key == 0 and not isinstance(key, bool):
            return FormValue(self)
        return str.__getitem__(self, key)


class ClassicOptionError(ValueError):
    """A ``user_options`` entry classic mode refuses; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


#: Template variables a user option may not set in classic mode: the
#: administrator's script fragments (run as shell code) and the spawner's own values.
RESERVED_VARIABLES = ADMIN_FRAGMENTS | {"job_name", "workdir", "username", "homedir", "host"}
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_VALUE_CHARS = 1024
_MAX_ITEMS = 64


def _classic_value(field: str, value: Any) -> FormValue:
    if isinstance(value, bool) or value is None:
        text = "" if value is None else str(value).lower()
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise ClassicOptionError(field, f"unsupported value type {type(value).__name__}")
    if len(text) > _MAX_VALUE_CHARS:
        raise ClassicOptionError(field, f"longer than {_MAX_VALUE_CHARS} characters")
    problem = forbidden_char(text)
    if problem:
        raise ClassicOptionError(field, problem)
    return FormValue(text)


def classic_request(
    req: Mapping[str, Any],
    user_options: Mapping[str, Any] | None,
    *,
    cmd: str,
    system: str,
    firecrest_url: str,
    template: str,
    workdir: str,
    regexes: StateRegexes,
) -> SpawnRequest:
    """Classic mode's request: the ``req_*`` values, then ``user_options`` on top.

    As in the existing firecrestspawner, each user option becomes the
    template variable of its name (form values answer ``[0]``); unlike it,
    names are checked and every user value is untrusted. Raises
    :class:`ClassicOptionError`.
    """
    variables: dict[str, Any] = {
        k: FormValue(v) if isinstance(v, str) else v for k, v in req.items()
    }
    variables["cmd"] = cmd
    chosen = classic_user_variables(user_options)
    variables.update(chosen)
    return SpawnRequest(
        system=system,
        firecrest_url=firecrest_url,
        template=template,
        variables=variables,
        workdir=workdir,
        regexes=regexes,
        user_set=frozenset(chosen),
    )


def classic_user_variables(user_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Template variables from ``user_options`` in classic mode (no profiles).

    As the existing firecrestspawner did, every option becomes a template
    variable of its name and overrides the ``req_*`` value of that name; a
    one-element list (form data) and a plain value both become a
    :class:`FormValue`, a longer list a list of them. Unlike it, names are
    checked (identifiers, not :data:`RESERVED_VARIABLES`), values are
    scalars, and the script check treats every value as untrusted.
    """
    out: dict[str, Any] = {}
    for key, raw in (user_options or {}).items():
        key = str(key)
        if key in IGNORED_KEYS:
            continue
        if not _KEY_RE.fullmatch(key):
            raise ClassicOptionError(key[:64], "is not a valid option name")
        if key in RESERVED_VARIABLES:
            raise ClassicOptionError(key, "is set by the site and cannot be chosen")
        if isinstance(raw, (list, tuple)):
            if len(raw) > _MAX_ITEMS:
                raise ClassicOptionError(key, f"has more than {_MAX_ITEMS} values")
            values = [_classic_value(key, v) for v in raw]
            out[key] = values[0] if len(values) == 1 else values
        else:
            out[key] = _classic_value(key, raw)
    return out


_JOB_NAME_RE = {
    "slurm": re.compile(r"^#SBATCH\s+(?:--job-name(?:=|\s+)|-J\s*)(\S+)"),
    "pbs": re.compile(r"^#PBS\s+-N\s+(\S+)"),
}
_DIRECTIVE_PREFIX = {"slurm": "#SBATCH", "pbs": "#PBS"}


def ensure_job_name(script: str, job_name: str, scheduler: str = "slurm") -> tuple[str, bool]:
    """The script with this spawn's job name as the name the scheduler uses.

    The spawner finds its job by name after a lost submit answer, and the
    reaper recognises the hub's jobs by it, so a site template that names
    jobs itself (``--job-name=spawner-jupyterhub``) gets one more directive
    after its last one: the scheduler takes the last. Returns the script and
    whether it was changed.
    """
    pattern = _JOB_NAME_RE.get(scheduler)
    prefix = _DIRECTIVE_PREFIX.get(scheduler)
    if pattern is None or prefix is None:
        return script, False
    lines = script.split("\n")
    names = [m.group(1) for line in lines if (m := pattern.match(line.strip()))]
    if names and names[-1] == job_name:
        return script, False
    directive = (
        f"{prefix} --job-name={job_name}" if scheduler == "slurm" else f"{prefix} -N {job_name}"
    )
    last = max((i for i, line in enumerate(lines) if line.startswith(prefix)), default=None)
    if last is None:
        last = 0 if lines and lines[0].startswith("#!") else -1
    lines.insert(last + 1, directive)
    return "\n".join(lines), True


def format_command(cmd: Sequence[str], args: Sequence[str] = ()) -> str:
    """The single-user command line of the batch script.

    One configured string holding spaces (JupyterHub stores ``cmd = 'a b'``
    as ``['a b']``) is shell text written by the administrator: it goes in as
    it is, and the script's shell splits it (quotes, ``bash -c "..."``), as
    with the existing firecrestspawner. Otherwise each item is one word.
    ``args`` (``Spawner.args``) are always one quoted word each.
    """
    parts = [str(p) for p in cmd]
    if len(parts) == 1 and any(c.isspace() for c in parts[0]):
        head = parts[0].strip()
    else:
        head = " ".join(shlex.quote(p) for p in parts)
    tail = " ".join(shlex.quote(str(a)) for a in args)
    return f"{head} {tail}".strip()


def runs_wrapper(cmd: Sequence[str], wrapper: str) -> bool:
    """Whether the command runs ``wrapper`` (as a word, or inside ``bash -c "..."``)."""
    text = format_command(cmd)
    try:
        words = shlex.split(text)
    except ValueError:
        words = [text]
    # A ``bash -c "..."`` word is a command line of its own.
    tokens = [t for w in words for t in re.split(r"[\s;&|()]+", w) if t]
    return any(os.path.basename(t) == wrapper for t in tokens)


__all__ = [
    "ADMIN_FRAGMENTS",
    "IGNORED_KEYS",
    "RESERVED_VARIABLES",
    "ClassicOptionError",
    "FormValue",
    "SpawnRequest",
    "StateRegexes",
    "classic_request",
    "classic_user_variables",
    "ensure_job_name",
    "format_command",
    "render_request",
    "runs_wrapper",
    "trusted_variables",
]
