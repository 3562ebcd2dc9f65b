"""The environment a job starts with: a login's, never the emulator's own.

FirecREST runs ``sbatch --export=ALL,K=V,...`` in an SSH session as the user,
so a job gets what that login has (``HOME``, ``USER``, ``LOGNAME``, ``SHELL``,
``PATH``, the locale) plus the submit's ``env``. The emulator rebuilds that
login from the passwd entry instead of handing its own environment on: in the
demo it holds the hub's crypt key, the identity provider's client secret and
an admin service token, which must never reach a notebook process.
"""

from __future__ import annotations

import os
import pwd

#: sshd's default ``PATH`` for users (Debian), and for root.
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Variables of the emulator's environment that a login on the cluster has too:
#: the locale, the time zone and where Slurm's configuration is. Nothing else.
PASSED_THROUGH = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "SLURM_CONF",
)


def login_environment(user: str | None = None) -> dict[str, str]:
    """What a login of ``user`` (default: the account the emulator runs as) starts with.

    An unknown ``user`` gets the emulator's own account's login, which is the
    account its job then runs as.
    """
    entry: pwd.struct_passwd | None = None
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            entry = None
    if entry is None:
        try:
            entry = pwd.getpwuid(os.geteuid())
        except KeyError:
            entry = None
    uid = entry.pw_uid if entry is not None else os.geteuid()
    name = entry.pw_name if entry is not None else str(uid)
    env = {
        "HOME": (entry.pw_dir if entry is not None else "") or "/",
        "USER": name,
        "LOGNAME": name,
        "SHELL": (entry.pw_shell if entry is not None else "") or "/bin/sh",
        "PATH": ROOT_PATH if uid == 0 else USER_PATH,
    }
    for key in PASSED_THROUGH:
        value = os.environ.get(key)
        if value is not None:
            env[key] = value
    env.setdefault("LANG", "C.UTF-8")
    return env
