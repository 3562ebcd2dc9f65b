"""The doctor's findings: one :class:`Step` per check, printed for humans or as JSON.

Every text that leaves here passes through :func:`firecrestspawner.redact.redact`,
and the doctor registers each secret it handles, so no token is ever printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..redact import redact

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass
class Step:
    """One check: what was found (``detail``) and, unless it passed, what to do (``fix``)."""

    id: str
    title: str
    status: Status
    detail: str = ""
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["detail"] = redact(self.detail)
        out["fix"] = redact(self.fix)
        out["data"] = json.loads(redact(json.dumps(self.data, default=str)))
        return out


@dataclass
class Report:
    config: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(s.status == "fail" for s in self.steps)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def get(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "ok": self.ok,
            "failed": [s.id for s in self.steps if s.status == "fail"],
            "steps": [s.as_dict() for s in self.steps],
        }


_MARK = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


def format_report(report: Report) -> str:
    """Human output: one line per step, details indented, the fix after ``fix:``."""
    lines = [f"firecrestspawner doctor: {report.config}"]
    for step in report.steps:
        lines.append(f"[{_MARK[step.status]}] {step.title}")
        for text in redact(step.detail).splitlines():
            lines.append(f"       {text}")
        if step.fix and step.status != "pass":
            fix_lines = redact(step.fix).splitlines() or [""]
            lines.append(f"       fix: {fix_lines[0]}")
            lines.extend(f"            {t}" for t in fix_lines[1:])
    failed = [s for s in report.steps if s.status == "fail"]
    if failed:
        lines.append(f"{len(failed)} check(s) failed: {', '.join(s.id for s in failed)}")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines)


__all__ = ["Report", "Status", "Step", "format_report"]
