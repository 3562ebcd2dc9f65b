"""Schedulers behind the emulator: ``local`` (in-process) and ``slurm`` (real)."""

from __future__ import annotations

from ..config import FaultConfig, SystemConfig
from .base import Backend


def make_backend(system: SystemConfig, faults: FaultConfig) -> Backend:
    if system.backend == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend(system, faults)
    from .local import LocalBackend

    return LocalBackend(system, faults)
