"""``/status/``: liveness, systems, and a system's userinfo, partitions, reservations, nodes."""

from __future__ import annotations

import datetime as dt
import time

from .base import FirecrestHandler


class LivenessHandler(FirecrestHandler):
    route = "/status/liveness/"
    needs_auth = False

    async def get(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        self.reply(
            200,
            {
                "healthcheckRuns": {s.name: now for s in self.emu.config.systems},
                "lastUpdate": int(time.time() * 1000),
            },
        )


class SystemsHandler(FirecrestHandler):
    route = "/status/systems"

    async def get(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        systems = []
        for s in self.emu.config.systems:
            systems.append(
                {
                    "name": s.name,
                    "ssh": {
                        "host": s.node_name,
                        "port": 22,
                        "proxyHost": None,
                        "proxyPort": None,
                        "maxClients": 100,
                        "timeout": {
                            "connection": 5,
                            "login": 5,
                            "commandExecution": int(s.command_timeout),
                            "idleTimeout": 60,
                            "keepAlive": 5,
                        },
                    },
                    "scheduler": {
                        "type": "slurm",
                        "version": s.scheduler_version,
                        "connectionMode": s.connection_mode,
                        "apiUrl": None,
                        "apiVersion": None,
                        "timeout": 10,
                    },
                    "servicesHealth": [
                        {
                            "serviceType": "scheduler",
                            "healthy": s.healthy,
                            "lastChecked": now,
                            "latency": 0.01,
                            "message": None if s.healthy else "scheduler unavailable",
                        },
                        {
                            "serviceType": "ssh",
                            "healthy": s.healthy,
                            "lastChecked": now,
                            "latency": 0.01,
                            "message": None,
                        },
                        *(
                            {
                                "serviceType": "filesystem",
                                "healthy": s.healthy,
                                "lastChecked": now,
                                "latency": 0.01,
                                "message": None,
                                "path": f.path,
                            }
                            for f in s.file_systems
                        ),
                    ],
                    "probing": {
                        "intervalCheck": 120,
                        "services": {
                            "scheduler": {"timeout": 10},
                            "ssh": {"timeout": 5},
                            "filesystem": {"timeout": 5},
                        },
                    },
                    "lastHealthCheck": now,
                    "fileSystems": [
                        {
                            "path": f.path,
                            "dataType": f.data_type,
                            "defaultWorkDir": f.default_work_dir,
                        }
                        for f in s.file_systems
                    ],
                    "dataOperation": {
                        "max_ops_file_size": s.max_ops_file_size,
                        "datatransfer_jobs_directives": [],
                        "data_transfer": None,
                    },
                }
            )
        self.reply(200, {"systems": systems})


class SystemStatusHandler(FirecrestHandler):
    route = "/status/{system}/{kind}"

    def _template(self) -> str:
        kind = self.path_args[1] if len(self.path_args) > 1 else "{kind}"
        return f"{self.request.method} /status/{{system}}/{kind}"

    async def prepare(self) -> None:
        self.route = self._template().split(" ", 1)[1]
        await super().prepare()

    async def get(self, system: str, kind: str) -> None:
        backend = self.backend(system)
        if kind == "userinfo":
            self.reply(200, await backend.userinfo(self.user or ""))
        elif kind == "partitions":
            show_hidden = self.query_bool("show_hidden")
            if show_hidden is None:
                return
            self.reply(200, {"partitions": await backend.partitions(show_hidden)})
        elif kind == "reservations":
            self.reply(200, {"reservations": await backend.reservations()})
        else:
            self.reply(200, {"nodes": await backend.nodes()})
