"""The documented spawner variants: regex-configured states, and Slurm.

Both are importable from :mod:`firecrestspawner.spawner` too (the documented
place, and the entry points' ``firecrest`` and ``firecrest-slurm``).
"""

from __future__ import annotations

import inspect

from traitlets import Any as AnyTrait
from traitlets import Unicode, default

from . import states
from .profiles.script import builtin_template
from .spawner import FirecRESTSpawnerBase
from .states import StateRegexes


class FirecRESTSpawnerRegexStates(FirecRESTSpawnerBase):
    """Uses config-supplied regular expressions to interact with the batch submission system state.

    ``job_status`` is ``"<STATE> <nodes>"``; ``state_pending_re``,
    ``state_running_re`` and ``state_unknown_re`` classify it, and
    ``state_exechost_re`` / ``state_exechost_exp`` extract the host.
    """

    state_pending_re = Unicode(
        states.DEFAULT_PENDING_RE,
        help="""Regex that matches job_status if job is waiting to run""",
    ).tag(config=True)

    state_running_re = Unicode(
        states.DEFAULT_RUNNING_RE,
        help="""Regex that matches job_status if job is running.

        A state the scheduler reports as ending or finished (COMPLETING,
        COMPLETED, ...) counts as ended even if this regex matches it.
        """,
    ).tag(config=True)

    state_unknown_re = Unicode(
        states.DEFAULT_UNKNOWN_RE,
        help="""Regex that matches job_status if the resource manager is not answering.

        Blank indicates not used. A match keeps the job (poll() returns None).
        """,
    ).tag(config=True)

    state_exechost_re = Unicode(
        states.DEFAULT_EXECHOST_RE,
        help="""Regex with at least one capture group that extracts the execution host from job_status output.

        The captured text may be a Slurm hostlist; its first node is used.
        """,
    ).tag(config=True)

    state_exechost_exp = Unicode(
        "",
        help="""If empty, notebook IP will be set to the contents of the first capture group.

        If this variable is set, the match object will be expanded using this
        string to obtain the notebook IP. See Python docs: re.match.expand
        """,
    ).tag(config=True)

    node_name_template = Unicode(
        "",
        help="""A template for the DNS name of the node, e.g. ``"{}.cluster.example.org"``.

        Formatted with ``str.format`` on the first node of the job; empty uses
        the node name as it is.
        """,
    ).tag(config=True)

    custom_state_gethost = AnyTrait(
        "",
        help="""A custom function to get the name or ip of the node where the single-user server is running.

        An (async) callable ``(spawner) -> str``; replaces the regex and
        ``node_name_template``.
        """,
    ).tag(config=True)

    def _state_regexes(self) -> StateRegexes:
        return StateRegexes(
            pending=self.state_pending_re,
            running=self.state_running_re,
            unknown=self.state_unknown_re,
            exechost=self.state_exechost_re,
            exechost_exp=self.state_exechost_exp,
        )

    def _regex(self, name: str) -> str:
        # Profile mode may bring its own regexes with the request.
        if self.record.profile:
            return str(getattr(self.record.regexes, name))
        return str(getattr(self, f"state_{name}_re"))

    def state_ispending(self) -> bool:
        """Return boolean indicating if job is still waiting to run, likely by parsing self.job_status."""
        return states.is_pending(self.job_status, self._regex("pending"))

    def state_isrunning(self) -> bool:
        """Return boolean indicating if job is running, likely by parsing self.job_status."""
        return states.is_running(self.job_status, self._regex("running"))

    def state_isunknown(self) -> bool | None:
        """Return boolean indicating if job state retrieval failed because of the resource manager."""
        return states.is_unknown(self.job_status, self._regex("unknown"))

    async def state_gethost(self) -> str:  # type: ignore[override]
        """Return string, hostname or addr of running job, likely by parsing self.job_status."""
        if self.custom_state_gethost:
            result = self.custom_state_gethost(self)
            if inspect.isawaitable(result):
                result = await result
            return str(result or "")
        if self.record.profile:
            exechost, exp = self.record.regexes.exechost, self.record.regexes.exechost_exp
        else:
            exechost, exp = self.state_exechost_re, self.state_exechost_exp
        node = states.gethost(self.job_status, exechost, exp)
        if not node:
            return ""
        return self.node_name_template.format(node) if self.node_name_template else node


class SlurmSpawner(FirecRESTSpawnerRegexStates):
    """Implementation of the FirecRESTSpawner for Slurm."""

    batch_script = Unicode(
        help="""Template for the Slurm job script (Jinja2 or ``str.format``).

        The default is the built-in ``slurm`` template: job name, output file
        ``<workdir>/<job_name>.log``, one ``#SBATCH`` line per non-empty
        ``req_*`` resource, then ``prologue``, ``srun cmd`` and ``epilogue``.
        The API token is never part of the script.
        """,
    ).tag(config=True)

    @default("batch_script")
    def _default_batch_script(self) -> str:
        return builtin_template("slurm")

    req_cluster = Unicode("", help="""Cluster name to submit job to resource manager""").tag(
        config=True
    )
    req_qos = Unicode("", help="""QoS name to submit job to resource manager""").tag(config=True)
    req_srun = Unicode(
        "srun",
        help="""Set req_srun='' to disable running in job step, and note that this affects environment handling.

        This is effectively a prefix for the singleuser command.
        """,
    ).tag(config=True)
    req_reservation = Unicode("", help="""Reservation name to submit to resource manager""").tag(
        config=True
    )
    req_gres = Unicode("", help="""Additional resources (e.g. GPUs) requested""").tag(config=True)
    req_submitenv = Unicode("", help="""Submit environment""").tag(config=True)
    req_constraint = Unicode("", help="""Specify the constraint""").tag(config=True)


__all__ = ["FirecRESTSpawnerRegexStates", "SlurmSpawner"]
