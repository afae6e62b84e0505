"""What browsers are told to enforce: the security headers of every response, and plots made
to render under the dashboard's content security policy.

One ASGI middleware gives every response its headers, so a new page cannot be without them.
Dashboard pages (`/ui`) run no script at all and load only the service's own style sheet;
they may not be framed, post forms elsewhere or be kept in a cache (they show personal data).
API answers load nothing; the interactive API docs keep FastAPI's own scripts and are only
refused framing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Final

from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP: Final = (
    "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
DOCS_CSP: Final = "frame-ancestors 'none'"

_ALWAYS: Final = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
)


def headers_for(path: str, docs: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The security headers a response to `path` carries (unless the route set its own)."""
    found = list(_ALWAYS)
    if path == "/ui" or path.startswith("/ui/"):
        found.append(("content-security-policy", DASHBOARD_CSP))
        found.append(("referrer-policy", "same-origin"))
        if not path.startswith("/ui/static/"):
            found.append(("cache-control", "no-store"))
        return found
    found.append(("referrer-policy", "no-referrer"))
    found.append(("content-security-policy", DOCS_CSP if path in docs else API_CSP))
    if path.startswith("/v1/"):
        found.append(("cache-control", "no-store"))  # leads' data, behind a key
    return found


class SecurityHeaders:
    """Add `headers_for` each response's path; `docs` are the paths of the API docs pages."""

    def __init__(self, app: ASGIApp, docs: Iterable[str | None] = ()) -> None:
        self.app = app
        self.docs = frozenset(d for d in docs if d)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"], self.docs)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


# SVG presentation attributes: what matplotlib writes as inline CSS, which the policy refuses
# (style-src without 'unsafe-inline'), can be said as attributes, which it does not govern.
_PRESENTATION: Final = frozenset(
    {
        "clip-rule",
        "color",
        "dominant-baseline",
        "fill",
        "fill-opacity",
        "fill-rule",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "opacity",
        "stroke",
        "stroke-dasharray",
        "stroke-dashoffset",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-opacity",
        "stroke-width",
        "text-anchor",
        "visibility",
    }
)
_SVG: Final = re.compile(r"<svg\b.*?</svg>", re.S)
_SVG_START: Final = re.compile(r"<svg\b")
_STYLE_ELEMENT: Final = re.compile(r"<style\b[^>]*>(.*?)</style>", re.S)
_UNIVERSAL_RULE: Final = re.compile(r"\*\s*\{([^}]*)\}")
_START_TAG: Final = re.compile(r"<[A-Za-z][^<>]*>")  # text and values escape < > and "
_STYLE_ATTRIBUTE: Final = re.compile(r'\sstyle="([^"]*)"')


def _attributes(declarations: str) -> str:
    parts = []
    for declaration in declarations.split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip().lower(), html.unescape(value.strip())
        if colon and name in _PRESENTATION and value:
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
    return "".join(parts)


def _fit_one(match: re.Match[str]) -> str:
    svg = match.group(0)
    # matplotlib's only style sheet is one universal rule; its properties all inherit, so
    # on the root element they mean the same
    inherited = "".join(
        _attributes(rule.group(1))
        for sheet in _STYLE_ELEMENT.finditer(svg)
        for rule in _UNIVERSAL_RULE.finditer(sheet.group(1))
    )
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _START_TAG.sub(
        lambda tag: _STYLE_ATTRIBUTE.sub(lambda m: _attributes(m.group(1)), tag.group(0)), svg
    )
    return _SVG_START.sub(lambda m: m.group(0) + inherited, svg, count=1)


def fit_svg(markup: str) -> Markup:
    """Trusted HTML (ours or the evaluate layer's, text escaped) with every inline SVG's CSS
    turned into presentation attributes, so plots look the same under DASHBOARD_CSP."""
    return Markup(_SVG.sub(_fit_one, markup))
