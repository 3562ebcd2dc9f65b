"""``firecrestspawner validate``, ``render`` and ``schema``: site profiles from the command line.

The commands run the same functions the spawner runs: ``validate`` the
profile loader, ``render`` the option validator and the script renderer, so a
site's CI sees exactly the errors a spawn would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from .errors import Problem, ProfileError
from .loader import (
    LoadedFile,
    merge_profiles,
    profile_files,
    read_claimed_ids,
    read_profile_file,
)

DEFAULT_PATHS = ("profiles",)


def _collect(paths: list[str]) -> tuple[list[Path], list[ProfileError]]:
    files: list[Path] = []
    errors: list[ProfileError] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = profile_files(p)
            if not found:
                errors.append(
                    ProfileError(
                        [
                            Problem(
                                str(p),
                                "$",
                                "no profile files (*.yaml, *.yml, *.toml) in this directory",
                                "",
                            )
                        ]
                    )
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            errors.append(ProfileError([Problem(str(p), "$", "no such file or directory", "")]))
    return files, errors


def validate_paths(paths: list[str]) -> tuple[list[LoadedFile], list[ProfileError]]:
    """Load every profile file under ``paths``; also report profile ids defined twice.

    The same rule as the hub (:func:`~.loader.merge_profiles`, with the ids a
    broken file may define), so ``validate`` and a hub reading the same files agree.
    """
    loaded, errors, _ = _validate(paths)
    return loaded, errors


def _validate(paths: list[str]) -> tuple[list[LoadedFile], list[ProfileError], list[str]]:
    files, errors = _collect(paths)
    loaded: list[LoadedFile] = []
    broken: dict[str, frozenset[str]] = {}
    for f in files:
        try:
            loaded.append(read_profile_file(f))
        except ProfileError as e:
            errors.append(e)
            broken[str(f)] = read_claimed_ids(f)
    served, duplicates = merge_profiles(loaded, broken)
    return loaded, errors + duplicates, [p.id for p in served]


def _github_escape(text: str, *, prop: bool = False) -> str:
    """A value for a GitHub workflow command (``%``, CR, LF; also ``:`` and ``,`` in properties)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github_annotation(problem: Problem, level: str = "error") -> str:
    """One ``::error file=F,line=L,col=C,title=T::message`` line (GitHub Actions annotations)."""
    props = [f"file={_github_escape(problem.file, prop=True)}"]
    if problem.line is not None:
        props.append(f"line={problem.line}")
        props.append(f"col={problem.column or 1}")
    props.append(f"title={_github_escape(problem.path, prop=True)}")
    message = f"{problem.path}: {problem.message}"
    if problem.hint:
        message += f"\nhint: {problem.hint}"
    return f"::{level} {','.join(props)}::{_github_escape(message)}"


def cmd_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every problem of every file in one report (text, JSON or GitHub annotations)."""
    out = out or sys.stdout
    loaded, errors, served = _validate(args.paths or list(DEFAULT_PATHS))
    problems = [p for e in errors for p in e.problems]
    failing = {p.file for p in problems}
    fmt = "json" if getattr(args, "json", False) else getattr(args, "format", None) or "text"
    warnings = [w for lf in loaded for w in lf.warnings]
    if fmt == "json":
        report: dict[str, Any] = {
            "valid": not errors,
            "served": served,
            "files": [
                {
                    "file": lf.source,
                    "profiles": [p.id for p in lf.profiles],
                    "valid": lf.source not in failing,
                }
                for lf in loaded
            ],
            "errors": [p.as_dict() for p in problems],
            "warnings": [w.as_dict() for w in warnings],
        }
        out.write(json.dumps(report, indent=2) + "\n")
    elif fmt == "github":
        for p in problems:
            out.write(github_annotation(p) + "\n")
        for w in warnings:
            out.write(github_annotation(w, "warning") + "\n")
    else:
        for lf in loaded:
            if lf.source not in failing:
                out.write(f"ok: {lf.source} ({', '.join(p.id for p in lf.profiles)})\n")
            for warning in lf.warnings:
                out.write(f"warning: {warning}\n")
        for p in problems:
            out.write(f"{p}\n")
        valid = sum(1 for lf in loaded if lf.source not in failing)
        summary = f"{valid} file(s) valid"
        summary += f", {len(problems)} error(s)" if problems else ""
        summary += f", {len(warnings)} warning(s)" if warnings else ""
        out.write(summary + "\n")
    return 1 if errors else 0


def cmd_schema(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from .models import generate_schema

    schema = generate_schema()
    if getattr(args, "markdown", False):
        (out or sys.stdout).write(schema_markdown(schema))
    else:
        (out or sys.stdout).write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return 0


#: Sections of the reference, in reading order: ($defs name or "" for the file, title).
_SECTIONS = (
    ("", "The file"),
    ("System", "`systems[]`: a system"),
    ("ProfileSpec", "`profiles[]`: a profile"),
    ("BatchScript", "`batch_script`"),
    ("States", "`states`"),
    ("ChoiceOption", "Option `kind: choice`"),
    ("Choice", "`choices.<key>`: a choice"),
    ("ClusterChoiceOption", "Option `kind: cluster_choice`"),
    ("IntegerOption", "Option `kind: integer`"),
    ("NumberOption", "Option `kind: number`"),
    ("DurationOption", "Option `kind: duration`"),
    ("TextOption", "Option `kind: text`"),
    ("BooleanOption", "Option `kind: boolean`"),
    ("UenvOption", "Option `kind: uenv`"),
    ("UenvImage", "`images.<label>`: a uenv image"),
    ("UenvView", "`views.<name>`: a uenv view"),
    ("SchedulerOptionsOption", "Option `kind: scheduler_options`"),
    ("AllowedSchedulerOption", "`allow.<name>`: an allowed scheduler option"),
    ("DependentRule", "`depends_on.<option>.<value>`: a dependent rule"),
    ("ClusterBound", "`cluster_max`: a partition limit from FirecREST"),
)


def _anchor(title: str) -> str:
    return "#" + "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _type_of(node: dict[str, Any], titles: dict[str, str]) -> str:
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        title = titles.get(name, name)
        return f"[{name}]({_anchor(title)})"
    if "oneOf" in node or "anyOf" in node:
        branches = node.get("oneOf") or node.get("anyOf") or []
        return " or ".join(_type_of(b, titles) for b in branches)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(node.get('items', {}), titles)}"
    if kind == "object" and "patternProperties" in node:
        pattern, sub = next(iter(node["patternProperties"].items()))
        return f"map (keys `{pattern}`) of {_type_of(sub, titles)}"
    text = kind
    limits = []
    if "pattern" in node:
        limits.append(f"pattern `{node['pattern']}`")
    for key, label in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<=")):
        if key in node:
            limits.append(f"{label} {node[key]}")
    if "maxLength" in node:
        limits.append(f"at most {node['maxLength']} characters")
    if limits:
        text += " (" + ", ".join(limits) + ")"
    return text


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def schema_markdown(schema: dict[str, Any]) -> str:
    """The profile reference, rendered from the schema (``docs/profiles.md``)."""
    titles = {name: title for name, title in _SECTIONS if name}
    lines = [
        "# Site profile reference",
        "",
        (
            "<!-- Generated from schemas/profile.schema.json by "
            "`firecrestspawner schema --markdown`; do not edit by hand. -->"
        ),
        "",
        _cell(schema.get("description", "")),
        "",
        (
            f"Schema: <{schema['$id']}> (JSON Schema 2020-12; the `$id` is that URL, which "
            "an editor can fetch). Editors that use yaml-language-server show these descriptions "
            f"when a file starts with `# yaml-language-server: $schema={schema['$id']}` (or a "
            "local path to `schemas/profile.schema.json`)."
        ),
        "",
    ]
    for name, title in _SECTIONS:
        node = schema if not name else schema["$defs"][name]
        lines += [f"## {title}", ""]
        if name:
            lines += [_cell(node.get("description", "")), ""]
        required = set(node.get("required", []))
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for key, sub in node.get("properties", {}).items():
            default = (
                "**required**"
                if key in required
                else (f"`{json.dumps(sub['default'])}`" if "default" in sub else "")
            )
            lines.append(
                f"| `{key}` | {_cell(_type_of(sub, titles))} | {default} | {_cell(sub.get('description', ''))} |"
            )
        if node.get("x-hint"):
            lines += ["", f"Rule: {_cell(node['x-hint'])}."]
        lines.append("")
    lines += _template_section()
    return "\n".join(lines)


def _template_section() -> list[str]:
    from .checks import SCHEDULER_STATES
    from .dependent import DOC as DEPENDENT_DOC
    from .expert import DOC as EXPERT_DOC
    from .identity import DOC as IDENTITY_DOC
    from .options import IGNORED_KEYS
    from .peers import DOC as PEERS_DOC
    from .sandbox import (
        MAX_FORMAT_WIDTH,
        MAX_RANGE,
        MAX_SCRIPT_CHARS,
        MAX_TEMPLATE_CHARS,
        SAFE_FILTERS,
    )
    from .script import BUILTIN_REQ_NAMES, BUILTIN_TEMPLATES, SPAWN_VARIABLES
    from .systems import DOC as SYSTEMS_DOC

    lines = [
        "## Checking files (CI)",
        "",
        (
            "`firecrestspawner validate [PATH ...]` reports every problem of every file in one "
            "pass: schema errors and the cross-field errors of everything the schema accepted, "
            "a profile id in two files and `default: true` in several files (each naming the "
            "other places). `--format github` prints `::error file=…,line=…,col=…::` annotations "
            "for GitHub Actions; `--format json` (or `--json`) a report for other CI. The "
            "pre-commit hook `firecrestspawner-validate` checks files under `profiles/` only; "
            "override its `files:` to check another directory."
        ),
        "",
        "## Template variables",
        "",
        "A batch template sees the documented request variables (each `req_<x>` as `<x>`, "
        "empty unless set): " + ", ".join(f"`{n}`" for n in BUILTIN_REQ_NAMES) + "; "
        "the request variables the file declares (`defaults`, a system's or profile's `req`, "
        "an option's `req`, a choice's `req`); and, from the spawner, "
        + ", ".join(f"`{n}`" for n in SPAWN_VARIABLES)
        + ". `host` is the profile's system. With `legacy_lists`, each option value is also "
        "a one-element list under the option id. A template that uses any other name is refused "
        "when the file is loaded.",
        "",
        (
            "Request values, lowest precedence first: the spawner configuration (`c.Spawner.req_*`), "
            "the file's `defaults` and the system's `req`, the profile's `req`, the user's validated "
            "choices (and a choice's own `req`)."
        ),
        "",
        "Filters: `shquote` (one shell word, `shlex.quote`) and these of Jinja2's: "
        + ", ".join(f"`{n}`" for n in sorted(SAFE_FILTERS - {"shquote"}))
        + ". Built-in templates: "
        + ", ".join(f"`{n}`" for n in BUILTIN_TEMPLATES)
        + ".",
        "",
        (
            "GPUs in the built-in templates: `gpus_per_node` is the number of GPUs on *each* node "
            "(Slurm `--gpus-per-node`, PBS `select=<nnodes>:ngpus=<n>`); `gpus` is the number of "
            "GPUs of the *whole job* (Slurm `--gpus`; PBS cannot ask for it and refuses it). With "
            "2 nodes of 4 GPUs, write `nnodes: 2` and `gpus_per_node: 4`. The older `ngpus` still "
            "renders as before (Slurm: per job, PBS: per node), with a warning naming the new names."
        ),
        "",
        "## What a template may do",
        "",
        (
            "Templates render in Jinja2's sandbox with bounded costs, checked when the file is "
            "loaded: no `include`, `import` or `extends` (a template is one self-contained text); "
            f"at most {MAX_TEMPLATE_CHARS} characters; no loop inside a loop or a macro; "
            f"`range()` of at most {MAX_RANGE} items; widths in format specifications "
            f"(`{{:>10}}`, `%10s`) at most {MAX_FORMAT_WIDTH}; a rendered script of at most "
            f"{MAX_SCRIPT_CHARS} characters. A template that fails at a spawn gives a clear "
            "message naming the profile, never a traceback."
        ),
        "",
        "## Scheduler directives and the values in them",
        "",
        (
            "Lines starting with `#SBATCH`, `#SLURM`, `#PBS` or `#BSUB` (after blanks too) are "
            "directive lines. A value that is not the administrator's shell fragment (`cmd`, "
            "`prologue`, `epilogue`, `options`, `srun`, `submitenv`) may go onto a directive line "
            "only as one *inert word*: letters, digits and `. , : = @ % + / _ -`, not starting with "
            "`-` or `:`, not containing `packjob` or `hetjob`; an empty value may not stand as a word "
            "of its own. The check follows `sbatch`'s own reading of the line (its tokenizer, "
            "checked against real `sbatch`). Anywhere else in the script a value goes as it is: "
            "write `{{ x | shquote }}`; `validate` warns about a user's value in the body without "
            "it. Values the file declares (`req`, `defaults`, a system's `req`, choices, uenv "
            "images, booleans) pass the same checks when the file is loaded, so a mistake there is "
            "reported at its line, never to a user at a spawn."
        ),
        "",
        "## Several files",
        "",
        (
            "A profile directory reads every `*.yaml`, `*.yml` and `*.toml` file. A profile id that "
            "more than one file defines is served by none of them (each file gets an error), and a "
            "file that does not load still counts with the ids it may define, so breaking a file "
            "never lets another definition, with other restrictions, take the place of its own. "
            "`validate` applies the same rule. Text patterns and cluster filters are matched with "
            "RE2 (linear time); a construct RE2 cannot run is refused when the file is loaded."
        ),
        "",
        *IDENTITY_DOC,
        *SYSTEMS_DOC,
        *DEPENDENT_DOC,
        *EXPERT_DOC,
        "## Option values from users",
        "",
        "The form, `opt-` links, the REST API and saved options all pass one validator. Keys "
        "other than `profile` and the options of the chosen profile are refused ("
        + ", ".join(f"`{k}`" for k in sorted(IGNORED_KEYS))
        + " is dropped); values of options hidden by `when` are ignored; no value may contain a "
        "control or line-separator character. A `uenv` option also reads `<id>_view`.",
        "",
        "## Default state regexes",
        "",
        "| scheduler | pending | running | unknown | exechost |",
        "|---|---|---|---|---|",
    ]

    def code(regex: str) -> str:
        return f"`{_cell(regex)}`" if regex else "(none)"

    for name, st in SCHEDULER_STATES.items():
        cells = [code(st.pending), code(st.running), code(st.unknown), code(st.exechost)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines + PEERS_DOC


DEFAULT_CMD = "firecrestspawner-singleuser jupyterhub-singleuser"


def _parse_sets(items: list[str]) -> dict[str, list[str]]:
    raw: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--set {item!r}: expected key=value")
        raw.setdefault(key, []).append(value)
    return raw


def _parse_cluster(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        source, eq, names = item.partition("=")
        if not eq:
            raise ValueError(f"--cluster {item!r}: expected source=name,name")
        out[source] = [n for n in names.split(",") if n]
    return out


def cmd_render(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Validate options exactly as a spawn does and print the script it would submit."""
    from ..naming import job_name as make_job_name
    from ..redact import redact
    from .identity import ClusterIdentity
    from .models import ProfileSet
    from .options import OptionError, UserInfo, cluster_lists, validate_options
    from .script import ScriptRejected, ScriptTemplateError

    out = out or sys.stdout
    err = err or sys.stderr
    loaded, errors = validate_paths([args.file])
    if errors:
        for e in errors:
            err.write(f"{e}\n")
        return 1
    profiles, _ = merge_profiles(loaded)
    profile_set = ProfileSet(tuple(profiles))
    try:
        raw: dict[str, Any] = {"profile": [args.profile], **_parse_sets(args.set or [])}
        reported = _parse_cluster(args.cluster or [])
    except ValueError as e:
        err.write(f"error: {e}\n")
        return 2
    names = {v.system for p in profile_set for v in (p.variants.values() or (p,))}
    accounts = frozenset(getattr(args, "account", None) or ())
    unix_groups = frozenset(getattr(args, "unix_group", None) or ())
    identities = tuple(ClusterIdentity(n, accounts, unix_groups) for n in sorted(names))
    user = UserInfo(args.user, tuple(args.group or ()), identities)
    try:
        chosen = profile_set.get(args.profile)
        if chosen is not None and chosen.variants:  # --set system=NAME picks the variant
            chosen = chosen.variants.get(raw.get("system", [""])[-1], chosen)
        cluster = cluster_lists({chosen.system: reported}) if chosen and reported else None
        vo = validate_options(profile_set, raw, user=user, cluster=cluster)
        workdir = args.workdir or f"{(vo.profile.workdir or '/home').rstrip('/')}/{user.name}"
        name = args.job_name or make_job_name("hub", user.name, "", "000000000000")
        script = vo.render_script(
            cmd=args.cmd, job_name=name, workdir=workdir, extra={"username": user.name}
        )
    except OptionError as e:
        err.write(f"refused: {redact(e)}\n")
        return 1
    except (ScriptRejected, ScriptTemplateError) as e:
        err.write(f"script refused: {redact(e)}\n")
        return 1
    out.write(redact(script))
    if args.show_request:
        err.write(f"# system: {vo.profile.system}\n")
        for key, value in sorted(vo.req.items()):
            err.write(f"# req_{key} = {redact(value)!r}\n")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``render`` and ``schema``."""
    p = subparsers.add_parser(
        "validate",
        help="check site profile files",
        description="Check profile files (or directories of them) against the schema and the "
        "cross-field rules. Exit status 0 when all are valid, 1 otherwise. Warnings (such as a "
        "text pattern the browser cannot check) do not change the exit status.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: profiles/)"
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text (default), json, or github (::error annotations for GitHub Actions)",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser(
        "render",
        help="print the batch script a profile produces",
        description="Validate options exactly as a spawn does (same validator, same checks) and "
        "print the script that would be submitted, secrets redacted.",
    )
    p.add_argument("file", metavar="FILE", help="profile file or directory")
    p.add_argument("--profile", required=True, help="profile id")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="an option value, as the form sends it"
    )
    p.add_argument("--user", default="user", help="user name (default: user)")
    p.add_argument(
        "--group", action="append", metavar="GROUP", help="a JupyterHub group of the user"
    )
    p.add_argument(
        "--account",
        action="append",
        metavar="ACCOUNT",
        help="a Slurm account (project) the user holds on every system (as userinfo says)",
    )
    p.add_argument(
        "--unix-group", action="append", metavar="GROUP", help="a Unix group of the user"
    )
    p.add_argument(
        "--cluster",
        action="append",
        metavar="SOURCE=A,B",
        help="names FirecREST would report, e.g. accounts=proj1,proj2",
    )
    p.add_argument(
        "--cmd", default=DEFAULT_CMD, help=f"single-user command (default: {DEFAULT_CMD})"
    )
    p.add_argument("--workdir", help="job working directory (default: <system workdir>/<user>)")
    p.add_argument("--job-name", help="job name (default: a name as the spawner makes it)")
    p.add_argument(
        "--show-request", action="store_true", help="also print the resolved req_* values to stderr"
    )
    p.set_defaults(func=cmd_render)

    p = subparsers.add_parser("schema", help="print the profile JSON Schema")
    p.add_argument(
        "--markdown", action="store_true", help="print the reference (docs/profiles.md) instead"
    )
    p.set_defaults(func=cmd_schema)
