"""The hub's configuration as the doctor reads it, without starting a hub.

``jupyterhub_config.py`` is loaded by traitlets' ``PyFileConfigLoader``, as
``jupyterhub -f`` loads it. Trait values are then resolved the way a
``Configurable`` resolves its own: the sections of the class's MRO, base
first (``c.Spawner`` < ``c.FirecRESTSpawnerBase`` < ``c.SlurmSpawner``), each
value validated by the trait, and the trait's default (static or its
``@default`` method) when nothing is configured. Nothing hub-bound is
instantiated: a :class:`TraitView` answers attribute reads for the default
methods (``self.authenticator.token_url``, ``os.environ``...).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from traitlets import HasTraits
from traitlets.config import Config, Configurable, LazyConfigValue
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

WRAPPER = "firecrestspawner-singleuser"


class ConfigProblem(Exception):
    """The configuration cannot be read or is not for this spawner; says what to fix."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load ``jupyterhub_config.py`` as JupyterHub does (executing it)."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ConfigProblem(f"{file}: no such file", "pass the hub's file with -f PATH")
    loader = PyFileConfigLoader(file.name, path=str(file.parent))
    try:
        return loader.load_config()
    except ConfigFileNotFound:
        raise ConfigProblem(f"{file}: cannot be read", "check the path and its mode") from None
    except KeyError as e:  # os.environ["X"] in the file
        raise ConfigProblem(
            f"{file}: the file reads the environment variable {e.args[0]!r}, which is not set",
            "run the doctor with the hub's environment (e.g. --env-file of its systemd unit)",
        ) from None
    except Exception as e:  # noqa: BLE001 - anything the file raises
        where = _traceback_line(e, file)
        raise ConfigProblem(
            f"{file}{where}: {type(e).__name__}: {e}",
            "fix the configuration file (it fails the same way when the hub starts)",
        ) from None


def _traceback_line(exc: BaseException, file: Path) -> str:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == file:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None and isinstance(exc, SyntaxError):
        line = exc.lineno
    return f":{line}" if line else ""


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=VALUE`` lines (systemd ``EnvironmentFile`` style; ``#`` comments, quotes)."""
    out: dict[str, str] = {}
    text = Path(path).read_text()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ConfigProblem(f"{path}:{number}: not a KEY=VALUE line", "fix the env file")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


class TraitView:
    """The configured value of each trait of ``cls``, as an instance would have it.

    Attribute reads resolve lazily; ``extra`` supplies attributes that are not
    traits (``authenticator`` for the spawner's default methods).
    """

    #: Read by traitlets' element validation: no cross-validation (no ``@validate``
    #: of the class runs, as none needs a live instance to check a value's type).
    _cross_validation_lock = True

    def __init__(self, cls: type[HasTraits], config: Config, **extra: Any) -> None:
        self._cls = cls
        self._config = config
        self._traits = cls.class_traits()
        self._extra = extra
        self._cache: dict[str, Any] = {}
        self._section = _merged_section(cls, config)

    @property
    def cls(self) -> type[HasTraits]:
        return self._cls

    def configured(self, name: str) -> bool:
        """Whether the configuration sets ``name`` (in any section of the MRO)."""
        return name in self._section

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._extra:
            return self._extra[name]
        if name not in self._traits:
            raise AttributeError(f"{self._cls.__name__} has no trait {name!r}")
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> Any:
        trait = self._traits[name]
        default = self._default(name)
        if name not in self._section:
            return default
        value = self._section[name]
        if isinstance(value, LazyConfigValue):
            value = value.get_value(default)
        with contextlib.suppress(Exception):  # keep the raw value; the checks say what is wrong
            value = trait.validate(self, value)  # type: ignore[attr-defined]
        return value

    def _default(self, name: str) -> Any:
        trait = self._traits[name]
        generator = self._cls._all_trait_default_generators.get(name)
        try:
            if generator is None or getattr(generator, "__self__", None) is trait:
                return trait.default()
            return generator(self)
        except Exception:  # noqa: BLE001 - a default that needs a live hub (self.user...)
            return trait.default_value if trait.default_value is not None else None


def _merged_section(cls: type, config: Config) -> dict[str, Any]:
    """``Configurable._find_my_config``: sections of the MRO, base first, merged."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Configurable)):
            continue
        if config._has_section(klass.__name__):
            merged.update(dict(config[klass.__name__]))
    return merged


def _load_class(trait_name: str, value: Any) -> type:
    from jupyterhub.app import JupyterHub

    trait = JupyterHub.class_traits()[trait_name]
    if value is None:
        return trait.default_value
    return cast(type, trait.validate(None, value))  # type: ignore[attr-defined]


@dataclass
class HubSettings:
    """What the checks need from the hub's configuration."""

    path: str
    spawner_class: type
    spawner: TraitView
    authenticator_class: type | None
    hub_api_url: str
    hub_bind_host: str
    hub_bind_port: int
    hub_prefix: str
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def profile_mode(self) -> bool:
        return bool(self.spawner.profiles_dir)

    def cmd_words(self) -> list[str]:
        return [str(w) for w in (self.spawner.cmd or [])]

    def wrapper(self) -> tuple[str, str]:
        """The wrapper word of ``c.Spawner.cmd`` and the shell text before it.

        A one-string ``cmd`` is shell text (``module load x && firecrestspawner-singleuser
        ...``): what precedes the wrapper is kept as written. ``("", "")`` when the
        command does not run ``firecrestspawner-singleuser`` as a word.
        """
        words = self.cmd_words()
        if len(words) == 1 and any(c.isspace() for c in words[0]):
            text = words[0]
            with contextlib.suppress(ValueError):
                for word in shlex.split(text):
                    if os.path.basename(word) == WRAPPER:
                        return word, text[: text.find(word)].strip()
            return "", ""
        for i, word in enumerate(words):
            if os.path.basename(word) == WRAPPER:
                return word, " ".join(shlex.quote(w) for w in words[:i])
        return "", ""


def hub_settings(path: str | os.PathLike[str], config: Config | None = None) -> HubSettings:
    """Load the file and resolve the spawner's, authenticator's and hub's settings."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.objects import Hub

    from ..spawner import FirecRESTSpawnerBase

    config = load_config(path) if config is None else config
    hub = TraitView(JupyterHub, config)
    try:
        spawner_class = _load_class("spawner_class", hub.spawner_class)
    except Exception as e:  # noqa: BLE001
        raise ConfigProblem(
            f"c.JupyterHub.spawner_class cannot be loaded: {e}",
            'set c.JupyterHub.spawner_class = "firecrest-slurm" and install firecrestspawner',
        ) from None
    if not (isinstance(spawner_class, type) and issubclass(spawner_class, FirecRESTSpawnerBase)):
        raise ConfigProblem(
            f"c.JupyterHub.spawner_class is {spawner_class!r}, not a firecrestspawner class",
            'set c.JupyterHub.spawner_class = "firecrest-slurm"',
        )
    try:
        authenticator_class = _load_class("authenticator_class", hub.authenticator_class)
    except Exception:  # noqa: BLE001 - only the spawner's credential defaults need it
        authenticator_class = None
    authenticator = (
        TraitView(authenticator_class, config) if authenticator_class is not None else None
    )
    spawner = TraitView(spawner_class, config, authenticator=authenticator, user=None)

    prefix = hub.hub_prefix or "/hub/"
    if hub.hub_bind_url:
        parts = urlsplit(hub.hub_bind_url)
        bind_url = parts._replace(path=prefix).geturl()
        server = Hub(bind_url=bind_url, base_url=prefix)
    else:
        server = Hub(ip=hub.hub_ip, port=hub.hub_port, base_url=prefix)
    if hub.hub_connect_ip:
        server.connect_ip = hub.hub_connect_ip
    if hub.hub_connect_url:
        server.connect_url = urlsplit(hub.hub_connect_url)._replace(path=prefix).geturl()
    if hub.internal_ssl:
        server.proto = "https"
    bind = urlsplit(server.bind_url)
    environment = {
        str(k): str(v)
        for k, v in dict(spawner.environment or {}).items()
        if isinstance(v, (str, int, float))
    }
    return HubSettings(
        path=str(Path(path).resolve()),
        spawner_class=spawner_class,
        spawner=spawner,
        authenticator_class=authenticator_class,
        hub_api_url=server.api_url,
        hub_bind_host=bind.hostname or "",
        hub_bind_port=int(bind.port or server.port),
        hub_prefix=prefix,
        environment=environment,
    )


def config_req(spawner: TraitView) -> dict[str, str]:
    """The ``req_*`` values of the configuration (the profiles' lowest precedence)."""
    out = {}
    for name in spawner.cls.class_trait_names():
        if name.startswith("req_") and name not in ("req_username",):
            value = getattr(spawner, name)
            if value is not None:
                out[name[4:]] = str(value)
    return out


def job_workdir(spawner: TraitView, user: str, profile_workdir: str | None = None) -> str:
    """The job's working directory, as the spawner computes it."""
    if profile_workdir:
        return f"{profile_workdir.rstrip('/')}/{user}"
    workdir = str(spawner.workdir or "")
    if "{username}" in workdir:
        return workdir.format(username=user)
    return f"{workdir.rstrip('/')}/{user}"


def setting_name(spawner: TraitView, name: str) -> str:
    """``c.SlurmSpawner.<name>`` (the class the site configures)."""
    return f"c.{spawner.cls.__name__}.{name}"


__all__ = [
    "WRAPPER",
    "ConfigProblem",
    "HubSettings",
    "TraitView",
    "config_req",
    "hub_settings",
    "job_workdir",
    "load_config",
    "read_env_file",
    "setting_name",
]
