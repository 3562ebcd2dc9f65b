"""What of the hub's environment goes to FirecREST, and how it survives the trip.

FirecREST passes ``env`` to ``sbatch --export=ALL,K=V,...``: a comma in a value
ends the value there, and newlines or quotes on that command line are unsafe.
So the spawner sends:

* ``JUPYTERHUB_OAUTH_SCOPES`` and ``JUPYTERHUB_OAUTH_ACCESS_SCOPES`` base64
  encoded, as the existing firecrestspawner did (site batch scripts decode them
  with ``base64 --decode``);
* every other value that FirecREST or sbatch would mangle packed into one
  variable, ``FIRECRESTSPAWNER_ENV_B64`` (base64 of a JSON object), which
  ``firecrestspawner-singleuser`` unpacks in the job (:func:`decode_job_environment`);
* everything else unchanged.

Pure: no I/O, no JupyterHub import.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping

from .redact import REDACTED, redact

#: The variable carrying the packed values.
PACKED_VAR = "FIRECRESTSPAWNER_ENV_B64"

#: Keys base64-encoded in place for compatibility with existing site scripts.
BASE64_KEYS: tuple[str, ...] = ("JUPYTERHUB_OAUTH_SCOPES", "JUPYTERHUB_OAUTH_ACCESS_SCOPES")

#: Keys never sent by default: the login node's PATH is not the compute node's.
DEFAULT_DROP: tuple[str, ...] = ("PATH",)

# A value is sent as is only if it is printable ASCII without the characters
# sbatch --export or the shell on the login node treat specially.
_SAFE_VALUE = re.compile(r"[\x20-\x7e]*")
_UNSAFE_CHARS = frozenset(",'\"\\`$")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_NAME = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|_KEY$|^KEY$)")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _is_safe(value: str) -> bool:
    return bool(_SAFE_VALUE.fullmatch(value)) and not (_UNSAFE_CHARS & set(value))


def job_environment(
    env: Mapping[str, str],
    *,
    keep: Iterable[str] | None = None,
    drop: Iterable[str] = DEFAULT_DROP,
    base64_keys: Iterable[str] = BASE64_KEYS,
) -> dict[str, str]:
    """Return the ``env`` dict to send with the FirecREST submit request.

    ``keep``, when given, is an allow-list of keys (``None`` keeps all);
    ``drop`` removes keys (applied after ``keep``). Keys in ``base64_keys`` are
    base64-encoded in place; other values (and keys) that are not safe on an
    ``sbatch --export`` line are packed into :data:`PACKED_VAR`.
    """
    keep_set = None if keep is None else set(keep)
    drop_set = set(drop)
    b64_set = set(base64_keys)
    out: dict[str, str] = {}
    packed: dict[str, str] = {}
    for key, raw in env.items():
        if keep_set is not None and key not in keep_set:
            continue
        if key in drop_set or key == PACKED_VAR:
            continue
        value = "" if raw is None else str(raw)
        if key in b64_set:
            out[key] = _b64(value)
        elif _ENV_NAME.fullmatch(key) and _is_safe(value):
            out[key] = value
        else:
            packed[key] = value
    if packed:
        out[PACKED_VAR] = _b64(json.dumps(packed, ensure_ascii=True, sort_keys=True))
    return out


def _maybe_b64_json(value: str) -> str:
    """Decode ``value`` if it is base64 of JSON; leave it alone otherwise.

    The site's batch script may already have run ``base64 --decode`` on the
    scope variables; decoding twice must be harmless.
    """
    stripped = value.strip()
    if not stripped or stripped[:1] in "[{":
        return value
    try:
        decoded = base64.b64decode(stripped, validate=True).decode("utf-8")
        json.loads(decoded)
    except (binascii.Error, ValueError):
        return value
    return decoded


def decode_job_environment(
    environ: Mapping[str, str],
    *,
    base64_keys: Iterable[str] = BASE64_KEYS,
) -> dict[str, str]:
    """Inverse of :func:`job_environment`, run inside the job.

    Returns a new dict: ``environ`` with packed values restored (they win over
    same-named variables), :data:`PACKED_VAR` removed, and base64-encoded scope
    variables decoded unless the batch script already did it. Raises
    ``ValueError`` if the packed variable is corrupt.
    """
    out = dict(environ)
    blob = out.pop(PACKED_VAR, None)
    if blob:
        try:
            packed = json.loads(base64.b64decode(blob, validate=True).decode("utf-8"))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"{PACKED_VAR} is not base64-encoded JSON") from e
        if not isinstance(packed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in packed.items()
        ):
            raise ValueError(f"{PACKED_VAR} must hold a JSON object of strings")
        out.update(packed)
    for key in base64_keys:
        if key in out:
            out[key] = _maybe_b64_json(out[key])
    return out


def is_secret_name(key: str) -> bool:
    """True for variable names whose values must never be logged."""
    return bool(_SECRET_NAME.search(key))


def describe(env: Mapping[str, str]) -> str:
    """One line for logs: keys and values, secrets and packed values hidden."""
    parts = []
    for key in sorted(env):
        if is_secret_name(key):
            parts.append(f"{key}={REDACTED}")
        elif key == PACKED_VAR:
            try:
                names = sorted(decode_job_environment({PACKED_VAR: env[key]}, base64_keys=()))
            except ValueError:
                names = ["?"]
            parts.append(f"{key}=<packed: {' '.join(names)}>")
        else:
            parts.append(f"{key}={env[key]!r}")
    return redact(" ".join(parts))


__all__ = [
    "BASE64_KEYS",
    "DEFAULT_DROP",
    "PACKED_VAR",
    "decode_job_environment",
    "describe",
    "is_secret_name",
    "job_environment",
]
