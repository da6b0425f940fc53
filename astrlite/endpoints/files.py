"""Attachments, scope file (docs/compatibility.md M10; F8-F11, F14, F16, G3): upload with
POST /api/v1/file or /api/v1/files, download with GET /api/v1/file?attachment_id=,
/api/v1/files/{id}, /api/v1/files/{id}/content or, by stored name (the one in a bot's
`[IMAGE]<name>`), /api/v1/files/content?filename=; DELETE /api/v1/files/{id} deletes the
row and the file (G3). Every route sees only the calling key's attachments (F11).

An upload streams from the socket through the multipart parser into a temporary file;
the store moves it into place and commits its row only once it is complete. A download
is a FileRange body, which the connection sends with sendfile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from astrlite.errors import ApiError, business
from astrlite.files import filenames, multipart, ranges, sniff
from astrlite.files.attachments import AttachmentRow, AttachmentStore, FileRange, OpenedFile
from astrlite.files.incoming import IncomingFile
from astrlite.http.auth import MISSING_KEY
from astrlite.http.dates import http_date
from astrlite.http.request import Request
from astrlite.http.response import Headers, Response, json_ok
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services

log = logging.getLogger("astrlite")

MISSING_FILE = "Missing key: file"
MISSING_ATTACHMENT_ID = "Missing key: attachment_id"
MISSING_FILENAME = "Missing key: filename"
ATTACHMENT_NOT_FOUND = "Attachment not found"
FILE_ACCESS_ERROR = "File access error"
MALFORMED_MULTIPART = "Malformed multipart body: {}"
FILE_TOO_LARGE = "File too large (limit {limit} bytes)"
RANGE_NOT_SATISFIABLE = "Range not satisfiable"

# Room in Content-Length beside the file itself: boundary lines, a part header block
# (the parser allows 8 KiB) and a few small form fields. A request declaring more than
# limit + this is refused before a byte of it is read.
MULTIPART_ENVELOPE_ALLOWANCE = 64 * 1024
FILE_FIELD = "file"
# Kinds a browser may show in place; everything else is offered as a download.
INLINE_KINDS = frozenset({"image", "record", "video"})
CACHE_CONTROL = b"private, max-age=0"


def upload(services: Services) -> Handler:
    store = services.attachments
    limit = services.options.max_upload_bytes

    async def handle(request: Request) -> Response:
        owner = _owner(request)
        form = _FormReader(multipart.MultipartParser(_boundary(request)), store, limit)
        try:
            await form.read(request)
            row = await _commit(store, form, owner)
        except BaseException:
            form.discard()
            raise
        return json_ok(
            {
                "attachment_id": row.attachment_id,
                "filename": row.original_name,
                "type": row.kind,
                "size": row.size,
                "mime_type": row.mime_type,
            },
            services.profile.envelope,
        )

    return handle


def download(services: Services) -> Handler:
    store = services.attachments

    async def handle(request: Request) -> Response:
        attachment_id = request.query_value("attachment_id")
        if not attachment_id:
            raise business(400, MISSING_ATTACHMENT_ID)
        return await _serve(store, request, store.get(attachment_id, _owner(request)))

    return handle


def download_by_id(services: Services) -> Handler:
    """GET /api/v1/files/{attachment_id} and .../content: the bytes, as AstrBot 4.27."""
    store = services.attachments

    async def handle(request: Request) -> Response:
        return await _serve(store, request, store.get(_path_id(request), _owner(request)))

    return handle


def download_by_name(services: Services) -> Handler:
    """GET /api/v1/files/content?filename=: the file a bot's media event names."""
    store = services.attachments

    async def handle(request: Request) -> Response:
        filename = request.query_value("filename")
        if not filename:
            raise business(400, MISSING_FILENAME)
        # Only the last component counts, so `../config.json` names nothing outside.
        stored_name = filename.replace("\\", "/").rsplit("/", 1)[-1]
        row = store.get_by_stored_name(stored_name, _owner(request))
        if row is None:
            raise business(404, FILE_ACCESS_ERROR)
        return await _serve(store, request, row)

    return handle


def delete(services: Services) -> Handler:
    """DELETE /api/v1/files/{attachment_id}: the row, then the file (G3)."""
    store = services.attachments

    async def handle(request: Request) -> Response:
        attachment_id = _path_id(request)
        row = store.get(attachment_id, _owner(request))
        if row is None or not await store.delete(row):
            raise business(404, ATTACHMENT_NOT_FOUND)
        return json_ok({"attachment_id": attachment_id}, services.profile.envelope)

    return handle


def _path_id(request: Request) -> str:
    """The attachment id of /api/v1/files/{attachment_id}[/content] (percent-decoded)."""
    return request.params["attachment_id"]


async def _serve(store: AttachmentStore, request: Request, row: AttachmentRow | None) -> Response:
    if row is None:
        raise business(404, ATTACHMENT_NOT_FOUND)
    try:
        opened = await store.open(row)
    except OSError as problem:
        if store.get(row.attachment_id, _owner(request)) is None:  # deleted meanwhile
            raise business(404, ATTACHMENT_NOT_FOUND) from None
        log.warning("attachment %s: cannot read %s: %s", row.attachment_id, row.path, problem)
        raise business(410, FILE_ACCESS_ERROR) from None
    try:
        return _file_response(request, row, opened)
    except BaseException:
        opened.close()
        raise


def _owner(request: Request) -> str:
    if request.principal is None:  # the app authenticates every /api/v1 path first
        raise ApiError(401, MISSING_KEY)
    return request.principal.key_id


# -- upload ----------------------------------------------------------------------------


def _boundary(request: Request) -> str:
    """The multipart boundary; a body of any other type has no file in it."""
    content_type = (request.header(b"content-type") or b"").decode("latin-1")
    if content_type.partition(";")[0].strip().lower() != "multipart/form-data":
        raise business(400, MISSING_FILE)
    try:
        return multipart.parse_boundary(content_type)
    except multipart.MultipartError as problem:
        raise business(400, MALFORMED_MULTIPART.format(problem)) from None


@dataclass(frozen=True, slots=True)
class _FilePart:
    filename: str  # sanitised (F8)
    declared_type: str | None


class _FormReader:
    """Reads the whole body; the first part named `file` that has a filename (as in the
    original) streams into a temporary file, every other part is parsed and dropped."""

    def __init__(
        self, parser: multipart.MultipartParser, store: AttachmentStore, limit: int
    ) -> None:
        self.part: _FilePart | None = None
        self.incoming: IncomingFile | None = None
        self._parser = parser
        self._store = store
        self._limit = limit
        self._in_file = False

    async def read(self, request: Request) -> None:
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            try:
                await self._read_body(request, group)
            except Exception as problem:
                # Raised outside the group: the batch being written finishes before the
                # caller discards the file, and the error is not wrapped in a group.
                failure = problem
        if failure is not None:
            raise failure

    def discard(self) -> None:
        if self.incoming is not None:
            self.incoming.discard()

    async def _read_body(self, request: Request, group: anyio.abc.TaskGroup) -> None:
        # The body may exceed the file by the envelope; the file itself is checked in
        # _write. Both name the upload limit, hence the template formatted here.
        too_large = FILE_TOO_LARGE.format(limit=self._limit)
        body = request.stream(self._limit + MULTIPART_ENVELOPE_ALLOWANCE, too_large)
        received = 0
        try:
            async for chunk in body:
                received += len(chunk)
                for event in self._parser.feed(chunk):
                    await self._take(event, group)
            if received:  # an empty body is an empty form, as in the original
                self._parser.close()
        except multipart.MultipartError as problem:
            raise business(400, MALFORMED_MULTIPART.format(problem)) from None
        if self.incoming is not None:
            await self.incoming.finish()

    async def _take(self, event: multipart.Event, group: anyio.abc.TaskGroup) -> None:
        if isinstance(event, multipart.PartData):
            if self._in_file:
                await self._write(event.data)
        elif isinstance(event, multipart.PartStart):
            if self.part is None and event.name == FILE_FIELD and event.filename is not None:
                self.part = _FilePart(
                    filenames.sanitize_filename(event.filename), event.content_type
                )
                self.incoming = IncomingFile(self._store.temporary_path(), group)
                self._in_file = True
        else:
            self._in_file = False

    async def _write(self, data: bytes) -> None:
        assert self.incoming is not None
        if self.incoming.size + len(data) > self._limit:
            raise ApiError(413, FILE_TOO_LARGE.format(limit=self._limit), close=True)
        await self.incoming.write(data)


async def _commit(store: AttachmentStore, form: _FormReader, owner: str) -> AttachmentRow:
    part, incoming = form.part, form.incoming
    if part is None or incoming is None:
        raise business(400, MISSING_FILE)
    sniffed = sniff.sniff(incoming.head, part.declared_type, part.filename)
    return await store.commit(
        incoming.path,
        original_name=part.filename,
        size=incoming.size,
        sha256=incoming.sha256,
        mime_type=sniffed.mime_type,
        kind=sniffed.kind,
        owner_key_id=owner,
    )


# -- download --------------------------------------------------------------------------


def _file_response(request: Request, row: AttachmentRow, opened: OpenedFile) -> Response:
    etag = f'"{row.sha256}"'  # stored files never change; survives copies and restores
    validators: Headers = [
        (b"etag", etag.encode()),
        (b"last-modified", http_date(opened.mtime).encode()),
        (b"cache-control", CACHE_CONTROL),
    ]
    if ranges.etag_matches(_header_text(request, b"if-none-match"), etag):
        # A streamed empty body: a bytes body would add "Content-Length: 0", which RFC
        # 9110 §8.6 forbids on a 304 for a non-empty file. The connection closes it.
        return Response(304, validators, FileRange(opened, 0, 0))
    mime_type, disposition = _presentation(row)
    headers: Headers = [
        (b"content-type", mime_type.encode()),
        (b"content-disposition", _disposition(disposition, row.original_name)),
        (b"x-content-type-options", b"nosniff"),
        (b"accept-ranges", b"bytes"),
        *validators,
    ]
    # RFC 9110 §14.2: Range is defined for GET only; HEAD describes the whole file.
    wanted = _header_text(request, b"range") if request.method == "GET" else None
    chosen = ranges.parse_range(wanted, opened.size)
    if isinstance(chosen, ranges.RangeNotSatisfiable):
        opened.close()
        # An error like any other: the running profile's envelope (4.22 or 4.27).
        content_range = chosen.content_range.encode()
        raise ApiError(416, RANGE_NOT_SATISFIABLE, headers=((b"content-range", content_range),))
    if isinstance(chosen, ranges.PartialContent):
        headers.append((b"content-range", chosen.content_range.encode()))
        body = FileRange(opened, chosen.start, chosen.length)
        return Response(206, headers, body, content_length=chosen.length)
    return Response(200, headers, FileRange(opened, 0, opened.size), content_length=opened.size)


def _presentation(row: AttachmentRow) -> tuple[str, str]:
    """Content-Type and disposition: inline only for media of a passive type (F9)."""
    lowered = row.mime_type.lower()
    # sniff() never yields an active type; a row that carries one anyway (written by an
    # older version, or by hand) is served as bytes.
    if sniff.is_active_type(lowered):
        return sniff.OCTET_STREAM, "attachment"
    disposition = "inline" if row.kind in INLINE_KINDS else "attachment"
    if lowered.startswith("text/") and "charset" not in lowered:
        # sniff() calls a file text only when its bytes are UTF-8.
        return f"{row.mime_type}; charset=utf-8", disposition
    return row.mime_type, disposition


def _disposition(disposition: str, filename: str) -> bytes:
    # content_disposition() keeps the filename* value ASCII (percent-encoded).
    return filenames.content_disposition(disposition, filename).encode("ascii")


def _header_text(request: Request, name: bytes) -> str | None:
    value = request.header(name)
    return None if value is None else value.decode("latin-1")
