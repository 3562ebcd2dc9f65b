"""Profiles: load and validate many profile files; render the form for a user.

The files are generated from the shipped ``profiles/`` by giving each copy's
profiles unique ids (ids are unique across a profile directory). The form is
rendered through the spawner's own ``profile_options_form()`` (profile mode),
with the cluster-derived choices already in the shared cache after a first
render, as for every user after the first within the cache's TTL.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from firecrestspawner.profiles import ProfileDirectory, loader, trial
from firecrestspawner.profiles.options import UserInfo, visible_profiles

from .probes import percentile

SHIPPED = Path(__file__).resolve().parent.parent / "profiles"


def _load(path: Path) -> Any:
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        return tomllib.loads(path.read_text())
    return YAML(typ="rt").load(path.read_text())


def generate(
    target: Path,
    files: int,
    *,
    firecrest_url: str | None = None,
    sources: list[Path] | None = None,
    only_public: bool = False,
) -> int:
    """Write ``files`` profile files into ``target``; returns the number of profiles."""
    sources = sources or sorted(p for p in SHIPPED.iterdir() if p.suffix in (".yaml", ".toml"))
    target.mkdir(parents=True, exist_ok=True)
    yaml = YAML(typ="rt")
    count = 0
    for i in range(files):
        src = sources[i % len(sources)]
        doc = _load(src)
        profiles = [
            p for p in doc["profiles"] if not (only_public and (p.get("groups") or p.get("users")))
        ]
        for p in profiles:
            p["id"] = f"{p['id']}-{i:04d}"
            if "default" in p:
                p["default"] = False
        doc["profiles"] = profiles
        if firecrest_url is not None:
            doc["firecrest_url"] = firecrest_url
        count += len(profiles)
        out = io.StringIO()
        yaml.dump(doc, out)
        (target / f"site-{i:04d}.yaml").write_text(out.getvalue())
    return count


def bench_validate(files: int = 200, repeat: int = 3) -> dict[str, Any]:
    """Cold ``ProfileDirectory.current()`` (parse + schema + semantic checks) of ``files`` files."""
    tmp = Path(tempfile.mkdtemp(prefix="fcs-bench-profiles-"))
    try:
        n_profiles = generate(tmp, files)
        times = []
        for _ in range(repeat):
            # Cold each time: the loader keeps valid files by content hash.
            loader._CACHE.clear()
            trial._OUTCOMES.clear()
            directory = ProfileDirectory(tmp)
            t0 = time.perf_counter()
            ps = directory.current()
            times.append(time.perf_counter() - t0)
            if ps.errors or len(ps) != n_profiles:
                raise RuntimeError(f"generated profiles invalid: {ps.errors[:1]}")
        return {
            "files": files,
            "profiles": n_profiles,
            "seconds_min": min(times),
            "seconds_max": max(times),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def bench_form(emu: Any, visible: int = 50, renders: int = 200) -> dict[str, Any]:
    """p50/p95 of ``profile_options_form()`` for a user who sees ``visible`` profiles."""
    from .hub import BenchHub, reset_shared_state

    await reset_shared_state()
    hub = BenchHub(emu)
    pdir = hub.workroot / "profiles"
    try:
        sources = [SHIPPED / "generic-slurm.yaml"]
        n = generate(pdir, visible, firecrest_url=emu.url, sources=sources, only_public=True)
        users = await hub.add_users(["formuser"])
        spawner = hub.new_spawner(users[0], **hub.traits(profiles_dir=str(pdir)))
        ps = ProfileDirectory(pdir).current()
        seen = len(visible_profiles(ps, UserInfo("formuser", ())))
        first_t0 = time.perf_counter()
        html = await spawner.profile_options_form()  # fills the cluster cache
        first = time.perf_counter() - first_t0
        times = []
        for _ in range(renders):
            t0 = time.perf_counter()
            await spawner.profile_options_form()
            times.append(time.perf_counter() - t0)
        await asyncio.sleep(0)
        return {
            "profiles_generated": n,
            "profiles_visible": seen,
            "first_render_s": first,
            "render_p50_ms": percentile(times, 50) * 1e3,
            "render_p95_ms": percentile(times, 95) * 1e3,
            "html_kib": len(html) / 1024,
        }
    finally:
        await reset_shared_state()
        hub.close()
