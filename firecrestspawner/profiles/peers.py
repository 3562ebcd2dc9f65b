"""The comparison with KubeSpawner, batchspawner and Open OnDemand in docs/profiles.md (pure).

Text only: :func:`~.cli.schema_markdown` appends :data:`DOC` to the generated
reference, so the comparison is versioned with the format it describes.
"""

from __future__ import annotations

_ROWS = [
    (
        "What is declared",
        (
            "`c.KubeSpawner.profile_list`: Python dicts (`display_name`, `slug`, `description`, "
            "`default`, `kubespawner_override`)"
        ),
        (
            "`req_*` traits, `batch_script`, and an HTML `options_form` written by hand "
            "(wrapspawner's `ProfilesSpawner`: tuples)"
        ),
        (
            "`form.yml`: the `form` list of field names, `attributes` per field, the `cluster`; "
            "the script in `submit.yml.erb`"
        ),
        (
            "a YAML or TOML file: `systems`, `defaults`, `profiles[]` with `options[]`, checked "
            "against a published JSON Schema"
        ),
        "one profile per KubeSpawner profile or OOD app; each field becomes an option",
    ),
    (
        "Field kinds",
        "`profile_options` with `choices`; `unlisted_choice` for typed text",
        "whatever the HTML form has; all values arrive as lists of strings",
        (
            "widgets `select`, `number_field`, `text_field`, `check_box`, `hidden_field`, "
            "`path_selector`, ..."
        ),
        (
            "`choice`, `cluster_choice`, `integer`, `number`, `duration`, `text`, `boolean`, "
            "`uenv`, `scheduler_options`"
        ),
        (
            "`select` -> `choice`, `number_field` -> `integer`/`number`, `check_box` -> "
            "`boolean`, `bc_num_hours` -> `duration`, `text_field` -> `text` with a `pattern`"
        ),
    ),
    (
        "Fixed values",
        "`kubespawner_override` of a profile or choice",
        "`c.Spawner.req_*` for everyone",
        "an attribute given a value and left out of `form` (or a `hidden_field`)",
        "`req` of a profile, a system or a choice; the file's `defaults`",
        "`kubespawner_override: {x: v}` or `req_x = v` -> `req: {x: v}`",
    ),
    (
        "Free text",
        "`unlisted_choice.validation_regex`",
        "none (the value lands in the script as typed)",
        "none on the server",
        (
            "`text` with a full-match `pattern` (RE2), also given to the browser when it means "
            "the same there; `scheduler_options` for extra directives from an allow-list"
        ),
        "keep the regex as `pattern`; anchors are implied",
    ),
    (
        "Fields that depend on others",
        "none: one profile per combination",
        "your own JavaScript",
        (
            "`data-hide-*`, `data-set-*`, `data-min-*-for-*`, `data-max-*-for-*`, "
            "`data-option-for-*`, applied in the browser only"
        ),
        (
            "`when` (show/ignore) and `depends_on` (min, max, default, choices); applied by the "
            "form's script and enforced by the server; without JavaScript the rules are shown as text"
        ),
        (
            "`data-hide-x-when-y` -> `when` on x; `data-max-x-for-y-v: n` -> `depends_on: {y: "
            "{v: {max: n}}}` on x; `data-option-for-y-v: false` on a choice -> `depends_on: "
            "{y: {v: {choices: [...]}}}`; `data-set-x` -> a rule's `default`"
        ),
    ),
    (
        "Choices read from the cluster",
        "a callable `profile_list`",
        "your own code",
        "`auto_accounts`, `auto_queues` (and QoS, modules), cached",
        (
            "`cluster_choice` with `source` `partitions`, `reservations`, `accounts` or `nodes` "
            "from FirecREST, cached with a TTL, a `fallback` list and a note when stale; "
            "`cluster_max` caps a number by a partition's size"
        ),
        "`auto_accounts` -> `source: accounts`; `auto_queues` -> `source: partitions`",
    ),
    (
        "Several clusters",
        "not applicable",
        "one spawner class per cluster, or `ProfilesSpawner` profiles",
        "`cluster:` as a list gives a cluster select",
        "`systems: [a, b]` gives a generated `system` option that other options may depend on",
        "`cluster: [a, b]` -> `systems: [a, b]`; `data-*-for-cluster-a` -> rules on `system`",
    ),
    (
        "Who sees what",
        "a callable `profile_list` (user, JupyterHub groups)",
        "nothing built in",
        "app and cluster access by Unix group (file permissions, `acls` of a cluster)",
        (
            "`groups`/`users` (JupyterHub) and `accounts`/`unix_groups` (from FirecREST userinfo) "
            "on profiles, options, choices and uenv images, refused on every path"
        ),
        (
            "a callable that filters by group -> `groups:`; a Unix-group ACL -> `unix_groups:`; "
            "a project check in ERB -> `accounts:`"
        ),
    ),
    (
        "The batch script",
        "not applicable (a pod spec)",
        "`batch_script` with `{x}`; every `user_options` key is a variable",
        "`submit.yml.erb` (`native:` arguments) and the app's script templates",
        (
            "built-in Slurm and PBS templates or your own (Jinja2 sandbox or `str.format`); only "
            "validated values reach it; a value cannot add a directive line"
        ),
        "keep the template; `legacy_lists: true` keeps `{{ x[0] }}` working",
    ),
    (
        "Checked where",
        "the profile slug and choice keys on spawn",
        "nowhere",
        "the form in the browser",
        (
            "one validator for the form, `opt-` links, the REST API, saved options and "
            "`start()`; `firecrestspawner validate` and `render` before deploying"
        ),
        "run `firecrestspawner validate profiles/` in CI (`--format github`)",
    ),
]


def _rows() -> list[str]:
    out = [
        (
            "| feature | KubeSpawner `profile_list` | batchspawner forms | Open OnDemand `form.yml` "
            "| this format | how to translate |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for row in _ROWS:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return out


#: The section of docs/profiles.md (``firecrestspawner schema --markdown``).
DOC = [
    "## Compared with KubeSpawner, batchspawner and Open OnDemand",
    "",
    (
        "The same ideas under other names. Each row says what the peer offers and how to "
        "write it here; the three files of `profiles/examples/` are whole sites written this way."
    ),
    "",
    *_rows(),
    "",
    "### From a KubeSpawner `profile_list`",
    "",
    (
        "A profile dict becomes a profile (`slug` -> `id`, `display_name`, `description`, "
        "`default`); add `system:`. `kubespawner_override` values become `req:` entries named "
        "after the batch template's variables. Each `profile_options` entry becomes a `choice` "
        "option whose `choices` keep their keys and labels (a choice's override becomes its "
        "`req`); an `unlisted_choice` becomes a `text` option with `pattern` set to its "
        "`validation_regex`. A `profile_list` callable that filters by group becomes "
        "`groups:` (JupyterHub groups) or, when the rule is really about the cluster, "
        "`accounts:`/`unix_groups:`."
    ),
    "",
    "### From a batchspawner form",
    "",
    (
        "Each `c.Spawner.req_x = v` becomes `x: v` under `defaults:` (or a system's or "
        "profile's `req:`). The `batch_script` stays: point `batch_script.template_file` at it, "
        "or use the built-in template of your scheduler. Each field of the hand-written "
        "`options_form` becomes an option whose `id` is the template variable it fed (or set "
        "`req:`); `options_from_form` is not needed. Templates that read `{{ runtime[0] }}` "
        "keep working with `legacy_lists: true`. A field whose value went into `req_options` "
        "as free text becomes a `scheduler_options` option with an allow-list."
    ),
    "",
    "### From an Open OnDemand `form.yml`",
    "",
    (
        "`cluster:` becomes `system:` (or `systems:` for a list). Each name in `form:` becomes "
        "an option of the kind its `widget` suggests: `select` options `[label, value]` become "
        "`choices: {value: {display_name: label}}`, `min`/`max`/`step` and `value` keep their "
        "meaning (`value` -> `default`), `help` (Markdown) becomes `help`. `bc_num_hours` is a "
        '`duration` (write `max: "8:00:00"`), `bc_account`/`auto_accounts` a `cluster_choice` '
        "with `source: accounts`, `auto_queues` one with `source: partitions`. The dynamic "
        "directives become `when` and `depends_on` on the option they change, declared below "
        "the option they read. What `submit.yml.erb` passed as `native:` arguments goes into "
        "the batch template's directive lines; values there pass the directive checks. Access "
        "by Unix group becomes `unix_groups:`."
    ),
    "",
]

__all__ = ["DOC"]
