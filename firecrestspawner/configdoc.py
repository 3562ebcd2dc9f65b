"""Generate ``docs/configuration.md`` from the spawner's traits.

The help strings in :mod:`firecrestspawner.spawner` are the single source; a
test fails when the generated page and the file in ``docs/`` differ::

    python -m firecrestspawner.configdoc > docs/configuration.md
"""

from __future__ import annotations

import inspect
import sys

from traitlets import TraitType

HEADER = """# Configuration reference

Generated from the help strings of the spawner classes by
`python -m firecrestspawner.configdoc > docs/configuration.md`; do not edit by
hand. Set traits on `c.SlurmSpawner` (or on `c.Spawner`, which every spawner
class reads). Traits of JupyterHub's `Spawner` that this package does not
change (`http_timeout`, `environment`, `args`, `poll_interval`, ...) keep their
JupyterHub meaning and are not repeated here.
"""


def _default(cls: type, name: str, trait: TraitType) -> str:
    generator = cls._all_trait_default_generators.get(name)  # type: ignore[attr-defined]
    if generator is not None and not getattr(generator, "__qualname__", "").startswith(
        "TraitType."
    ):
        return "computed (see below)"
    text = trait.default_value_repr()
    if "\n" in text or len(text) > 80:
        return "see below"
    return f"`{text}`"


def render() -> str:
    """The Markdown page (deterministic)."""
    from .spawner import SlurmSpawner

    traits = SlurmSpawner.class_traits()
    by_class: dict[str, list[tuple[str, TraitType]]] = {}
    for name, trait in sorted(traits.items()):
        owner = trait.this_class
        if owner is None or not owner.__module__.startswith("firecrestspawner"):
            continue
        by_class.setdefault(owner.__name__, []).append((name, trait))
    out = [HEADER]
    order = [c for c in reversed(SlurmSpawner.__mro__) if c.__name__ in by_class]
    for cls in order:
        entries = by_class[cls.__name__]
        summary = (inspect.getdoc(cls) or "").split("\n", 1)[0]
        out.append(f"\n## `{cls.__name__}`\n\n{summary}\n")
        for name, trait in entries:
            configurable = trait.metadata.get("config", False)
            out.append(f"\n### `{name}`\n")
            kind = type(trait).__name__
            info = trait.info()
            line = f"{kind}, default {_default(SlurmSpawner, name, trait)}"
            if not configurable:
                line += "; state, not configurable"
            out.append(f"\n*{line}* ({info})\n")
            out.append("\n" + inspect.cleandoc(trait.help or "") + "\n")
    return "".join(out)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
