"""``/filesystem/{system}/ops/``: tail, head, view, ls, stat, mkdir, chmod, upload, rm."""

from __future__ import annotations

import asyncio
from typing import Any

import tornado.web
from pydantic import ValidationError

from .. import filesystem as fs
from ..models import ChmodIn, MkdirIn, PathIn, validation_detail, validation_fields
from .base import FirecrestHandler


class OpsHandler(FirecrestHandler):
    route = "/filesystem/{system}/ops/{op}"

    def _template(self) -> str:
        op = self.path_args[1] if len(self.path_args) > 1 else "{op}"
        return f"{self.request.method} /filesystem/{{system}}/ops/{op}"

    async def prepare(self) -> None:
        self.route = self._template().split(" ", 1)[1]
        await super().prepare()

    def _path(self, system: str, raw: str | None) -> str | None:
        if raw is None:
            self.validation_error(
                [{"location": "query", "name": "path", "message": "Field required"}]
            )
            return None
        return fs.check_path(raw, system, self.backend(system).system.file_systems)

    def _max(self, system: str) -> int:
        return self.backend(system).system.max_ops_file_size

    async def get(self, system: str, op: str) -> None:
        self.backend(system)
        path = self._path(system, self.get_query_argument("path", None))
        if path is None:
            return
        if op in ("tail", "head"):
            ok1, lines = self.query_int("lines")
            if not ok1:
                return
            ok2, nbytes = self.query_int("bytes")
            if not ok2:
                return
            skip = self.query_bool("skipHeading" if op == "tail" else "skipTrailing")
            if skip is None:
                return
            if op == "tail":
                out = await asyncio.to_thread(fs.tail, path, lines, nbytes, skip, self._max(system))
            else:
                out = await asyncio.to_thread(fs.head, path, lines, nbytes, skip, self._max(system))
            self.reply(200, {"output": out})
        elif op == "view":
            ok1, size = self.query_int("size")
            ok2, offset = self.query_int("offset")
            if not (ok1 and ok2):
                return
            text = await asyncio.to_thread(fs.view, path, size, offset, self._max(system))
            self.reply(200, {"output": text})
        elif op == "ls":
            hidden = self.query_bool("showHidden")
            if hidden is None:
                return
            self.reply(200, {"output": await asyncio.to_thread(fs.ls, path, hidden)})
        elif op == "stat":
            deref = self.query_bool("dereference")
            if deref is None:
                return
            self.reply(200, {"output": await asyncio.to_thread(fs.stat, path, deref)})
        else:
            raise tornado.web.HTTPError(405)

    async def post(self, system: str, op: str) -> None:
        self.backend(system)
        if op == "mkdir":
            body = self._body(MkdirIn)
            if body is None:
                return
            path = self._path(system, body.source_path)
            if path is None:
                return
            out = await asyncio.to_thread(fs.mkdir, path, body.parent, self.owner())
            self.reply(201, {"output": out})
        elif op == "upload":
            path = self._path(system, self.get_query_argument("path", None))
            if path is None:
                return
            files = self.request.files.get("file")
            if not files:
                self.validation_error(
                    [{"location": "body", "name": "file", "message": "Field required"}]
                )
                return
            upload = files[0]
            if not upload.body:
                # The server pipes nothing to its decoder, which waits for input.
                await self.wait_for_stdin(self.backend(system))
                return
            await asyncio.to_thread(
                fs.upload, path, upload.filename, upload.body, self.owner(), self._max(system)
            )
            self.reply(204)
        else:
            raise tornado.web.HTTPError(405)

    async def delete(self, system: str, op: str) -> None:
        self.backend(system)
        if op != "rm":
            raise tornado.web.HTTPError(405)
        path = self._path(system, self.get_query_argument("path", None))
        if path is None:
            return
        roots = [f.path for f in self.backend(system).system.file_systems]
        await asyncio.to_thread(fs.rm, path, roots)
        self.reply(204)

    async def put(self, system: str, op: str) -> None:
        self.backend(system)
        if op != "chmod":
            raise tornado.web.HTTPError(405)
        body = self._body(ChmodIn)
        if body is None:
            return
        path = self._path(system, body.source_path)
        if path is None:
            return
        self.reply(200, {"output": await asyncio.to_thread(fs.chmod, path, body.mode)})

    def _body(self, model: type[PathIn]) -> Any:
        try:
            return model.model_validate(self.json_body())
        except ValidationError as e:
            self.validation_error(validation_fields(e), validation_detail(e))
        except ValueError:
            self.validation_error(
                [{"location": "body", "name": "body", "message": "JSON decode error"}]
            )
        return None
