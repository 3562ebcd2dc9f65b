"""``/compute/{system}/jobs``: submit, list, read, cancel jobs and read their metadata."""

from __future__ import annotations

import time

from pydantic import ValidationError

from ..backends.base import BackendError, JobRequest, slurm_error
from ..models import SubmitIn, validation_detail, validation_fields
from .base import FirecrestHandler


class JobsHandler(FirecrestHandler):
    route = "/compute/{system}/jobs"

    async def get(self, system: str) -> None:
        backend = self.backend(system)
        allusers = self.query_bool("allusers")
        if allusers is None:
            return
        account = self.get_query_argument("account", None)
        # ``name`` arrives in 2.6.0; older servers ignore the unknown query key.
        name = (
            self.get_query_argument("name", None)
            if self.emu.api_version_at_least("2.6.0")
            else None
        )
        records = await backend.list_jobs(self.user or "", allusers)
        now = time.time()
        sysname = system.lower()
        jobs = [
            r.to_model(now)
            for r in records
            if (account is None or r.account == account)
            and (name is None or r.name == name)
            and self.emu.visible(sysname, r.job_id, now)
        ]
        self.reply(200, {"jobs": jobs})

    async def post(self, system: str) -> None:
        backend = self.backend(system)
        try:
            body = SubmitIn.model_validate(self.json_body())
        except ValueError as e:
            if isinstance(e, ValidationError):
                self.validation_error(validation_fields(e), validation_detail(e))
            else:
                self.validation_error(
                    [{"location": "body", "name": "body", "message": "JSON decode error"}]
                )
            return
        job = body.job
        if job.script is None and job.script_path is None:
            # The real server runs sbatch with nothing on stdin: sbatch waits
            # for a script until the SSH command timeout.
            await self.wait_for_stdin(backend)
            return
        if isinstance(job.env, list):
            # The real SSH backend calls env.items(): a list is a server error.
            raise BackendError(500, "'list' object has no attribute 'items'")
        request = JobRequest(**job.model_dump())
        job_id = await backend.submit(self.user or "", request)
        self.emu.submitted_at[(system.lower(), job_id)] = time.time()
        await self.emu.persist()  # a job id answered is a job a restart knows
        self.reply(201, {"jobId": job_id})


class JobHandler(FirecrestHandler):
    route = "/compute/{system}/jobs/{job_id}"

    async def get(self, system: str, job_id: str) -> None:
        record = await self.visible_job(system, job_id)
        if record is not None:
            self.reply(200, {"jobs": [record.to_model()]})

    async def delete(self, system: str, job_id: str) -> None:
        backend = self.backend(system)
        if not self.check_job_id(job_id):
            return
        if not job_id.isdigit():
            raise slurm_error(1, f"scancel: error: Invalid job id {job_id}\n")
        await backend.cancel(self.user or "", job_id)
        await self.emu.persist()
        self.reply(204)


class JobMetadataHandler(FirecrestHandler):
    route = "/compute/{system}/jobs/{job_id}/metadata"

    async def get(self, system: str, job_id: str) -> None:
        record = await self.visible_job(system, job_id)
        if record is not None:
            self.reply(200, {"jobs": [record.to_metadata()]})
