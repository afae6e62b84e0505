"""Request bodies before any endpoint reads them: gzip undone, JSON depth and text sizes bounded.

One ASGI middleware for every endpoint, inside the byte limit of `BodyLimit` (app.py):

- `Content-Encoding: gzip` is undone here for every endpoint, in linear time, with at most
  `MAX_GZIP_MEMBERS` members and the body limit applied to the unzipped size; other encodings
  are refused (415).
- A JSON body (an object or a list) is parsed once and refused with 422 when it nests deeper
  than `MAX_DEPTH` or holds a text (a value or a key) longer than `MAX_TEXT` characters; the
  answer names the field. Bodies that are no valid JSON pass unchanged, for the endpoint to
  report as it always has.
- Big bodies are decoded in a worker thread, so one request never holds the event loop.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from typing import Any, Final

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_DEPTH: Final = 32
MAX_TEXT: Final = 10_000
MAX_GZIP_MEMBERS: Final = 64
# Decoding a body this small takes well under a millisecond; larger ones go to a thread.
INLINE_BYTES: Final = 64 * 1024
# Where the middleware leaves the parsed body for endpoints that read JSON themselves.
PARSED: Final = "leadscore.json"
_FIRST_CHUNK: Final = 256
_LARGEST_CHUNK: Final = 1 << 20


class BodyError(Exception):
    """A body refused before any endpoint sees it: an HTTP status and what was wrong."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field

    def response(self) -> JSONResponse:
        """The refusal as the service answers errors (422s name the field, as elsewhere)."""
        body: dict[str, Any] = {"detail": self.detail}
        if self.status == 422:
            field = self.field or "body"
            body["detail"] = f"body field '{field}': {self.detail}"
            body["errors"] = [{"in": "body", "field": field, "message": self.detail}]
        return JSONResponse(body, status_code=self.status)


def gunzip(data: bytes, limit: int, max_members: int = MAX_GZIP_MEMBERS) -> bytes:
    """Un-gzip a body of up to `max_members` members, refusing it once it passes `limit` bytes.

    Linear in the body: each member is fed in growing slices, so what zlib copies back as
    unused input stays small however many members follow (a copy of the whole rest per
    member made 240,000 one-byte members take seconds).
    """
    view = memoryview(data)
    out = bytearray()
    pos = 0
    members = 0
    while pos < len(view):
        members += 1
        if members > max_members:
            raise BodyError(413, f"gzip body of more than {max_members} members; send one")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        size = _FIRST_CHUNK
        while not inflater.eof:
            if pos >= len(view):
                raise BodyError(400, "body is not valid gzip: it ends early")
            piece = view[pos : pos + size]
            try:
                # max_length stops a small bomb from inflating to gigabytes before we look.
                out += inflater.decompress(piece, limit + 1 - len(out))
            except zlib.error as exc:
                raise BodyError(400, f"body is not valid gzip: {exc}") from None
            if len(out) > limit or inflater.unconsumed_tail:
                raise BodyError(
                    413,
                    f"request body larger than {limit} bytes once un-gzipped; send smaller batches",
                )
            pos += len(piece)
            size = min(size * 2, _LARGEST_CHUNK)
        pos -= len(inflater.unused_data)
    return bytes(out)


@dataclass(frozen=True)
class Parsed:
    """A JSON body as parsed here; `problem` says why it is no JSON by the strict rules."""

    value: Any
    problem: str | None = None


def parse_json(data: bytes) -> Parsed:
    """Parse JSON and check depth and text sizes; BodyError(422) names the field over a limit.

    NaN, infinity and numbers too large for a float are recorded as a `problem`, not refused:
    endpoints with typed bodies name the field themselves, tracking refuses the body.
    """
    problems: list[str] = []

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) and not problems:
            problems.append(f"number out of range: {text[:30]}")
        return value

    def constant(name: str) -> float:
        if not problems:
            problems.append(f"{name} is not JSON")
        return float(name.replace("Infinity", "inf"))

    try:
        value = json.loads(data, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise BodyError(422, f"nested deeper than {MAX_DEPTH} levels") from None
    check_json(value)
    return Parsed(value, problems[0] if problems else None)


def check_json(value: Any) -> None:
    """Refuse (BodyError 422, naming the field) nesting over MAX_DEPTH and texts over MAX_TEXT."""
    # An explicit stack, so that the recursion limit never decides what a body may hold; only
    # containers are pushed, so a list of a million numbers costs one pass in C-speed loops.
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    elif isinstance(value, str) and len(value) > MAX_TEXT:
        raise BodyError(422, _too_long(len(value)))
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _locate(value)
        if isinstance(item, dict):
            if any(len(k) > MAX_TEXT for k in item):
                raise _locate(value)
            children: Any = item.values()
        else:
            children = item
        for child in children:
            kind = type(child)
            if kind is str:
                if len(child) > MAX_TEXT:
                    raise _locate(value)
            elif kind is dict or kind is list:
                stack.append((child, depth + 1))


def _locate(value: Any, path: tuple[str, ...] = ()) -> BodyError:
    # Only called once a limit is known to be broken: finds the first place, with its path.
    if isinstance(value, str):
        return BodyError(422, _too_long(len(value)), _name(path)) if len(value) > MAX_TEXT else _OK
    if not isinstance(value, dict | list):
        return _OK
    if len(path) >= MAX_DEPTH:
        return BodyError(422, f"nested deeper than {MAX_DEPTH} levels", _name(path))
    if isinstance(value, dict):
        for key in value:
            if len(key) > MAX_TEXT:
                return BodyError(422, _too_long(len(key), "a key"), _name(path))
        items: Any = ((str(k), v) for k, v in value.items())
    else:
        items = ((str(i), v) for i, v in enumerate(value))
    for name, child in items:
        found = _locate(child, (*path, name))
        if found is not _OK:
            return found
    return _OK


_OK: Final = BodyError(200, "within the limits")


def _too_long(size: int, what: str = "text") -> str:
    return f"{what} of {size:,} characters; at most {MAX_TEXT:,}"


def _name(path: tuple[str, ...]) -> str:
    shown = ".".join(path[:8]) + (".…" if len(path) > 8 else "")
    return shown[:200] or "body"


def _is_json(headers: dict[bytes, bytes], body: bytes) -> bool:
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind.startswith(b"multipart/") or b"form-urlencoded" in kind or b"yaml" in kind:
        return False
    return body.lstrip()[:1] in (b"{", b"[")


def decode(headers: dict[bytes, bytes], body: bytes, limit: int) -> tuple[bytes, Parsed | None]:
    """The body un-gzipped, and parsed and checked when it is JSON (raises BodyError)."""
    encoding = headers.get(b"content-encoding", b"").strip().lower()
    if encoding in (b"gzip", b"x-gzip"):
        body = gunzip(body, limit)
    elif encoding not in (b"", b"identity"):
        shown = encoding.decode("latin-1")[:50]
        raise BodyError(415, f"Content-Encoding '{shown}' is not supported; use gzip")
    if not _is_json(headers, body):
        return body, None
    try:
        return body, parse_json(body)
    except (ValueError, UnicodeDecodeError):
        return body, None  # no JSON: the endpoint says so, in its own words


class BodyGuard:
    """ASGI middleware: un-gzips, parses and bounds request bodies (see the module docs)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = dict(scope["headers"])
        try:
            if len(body) > INLINE_BYTES or b"content-encoding" in headers:
                body, parsed = await run_in_threadpool(decode, headers, body, self.limit)
            else:
                body, parsed = decode(headers, body, self.limit)
        except BodyError as exc:
            await exc.response()(scope, receive, send)
            return
        if b"content-encoding" in headers:
            kept = [(k, v) for k, v in scope["headers"] if k not in _RESIZED]
            scope = {**scope, "headers": [*kept, (b"content-length", str(len(body)).encode())]}
        if parsed is not None:
            scope = {**scope, PARSED: parsed}
        request = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([request], receive), send)


_RESIZED: Final = (b"content-encoding", b"content-length")


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replayed
