"""FastAPI dependencies: the running service and API-key checks by scope."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request

from leadscore.service.keys import ApiKey, verify

if TYPE_CHECKING:
    from leadscore.service.app import Service


def get_service(request: Request) -> Service:
    """The service this app runs."""
    service: Service = request.app.state.service
    return service


def _token(request: Request) -> str | None:
    # Bearer for the REST API, Basic with the key as user name for Segment SDKs.
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return request.headers.get("x-api-key")


def require(scope: str) -> Any:
    """A dependency that admits keys with `scope` (admin keys may do everything)."""

    def check(request: Request) -> ApiKey:
        token = _token(request)
        if token is None:
            raise HTTPException(
                401,
                "missing API key: send 'Authorization: Bearer <key>' "
                "(or Basic auth with the key as user name)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        service = get_service(request)
        # Looked up in the store on every request (one indexed read): a key revoked by any
        # process, e.g. `leadscore keys revoke`, fails at once; a cache per process would not.
        with service.store.read() as conn:
            key = verify(conn, token)
        if key is None:
            raise HTTPException(
                401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if not key.allows(scope):
            raise HTTPException(403, f"this API key lacks the '{scope}' scope")
        return key

    return check


Admin = Annotated[ApiKey, Depends(require("admin"))]
Tracking = Annotated[ApiKey, Depends(require("tracking"))]
ServiceDep = Annotated["Service", Depends(get_service)]
