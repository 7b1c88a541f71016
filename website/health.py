"""/healthz: `ok`, `degraded` or `down` to anyone; the details only to an operator.

The details name internal hosts, ports and paths, so they go only to a request
made on this machine (a loopback address, and no proxy header: behind a proxy on
the same host the address is loopback too) or one that carries the operator token
(`Authorization: Bearer <HEALTH_TOKEN>`).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import Blueprint, current_app, request

from .views import catalog, storage

bp = Blueprint("health", __name__)
# Any of these means a proxy stands between the visitor and us: remote_addr is the proxy's.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")


def from_this_machine() -> bool:
    """Whether the request comes straight from loopback, not through a proxy."""
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # a Unix socket, or nothing: a proxy is the likely sender
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def has_operator_token() -> bool:
    """Whether the request carries HEALTH_TOKEN as a bearer token (never, when it is unset)."""
    token: str = current_app.config.get("HEALTH_TOKEN") or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode())


def report() -> tuple[dict[str, Any], int]:
    """Check Redis and the store: the details, and the status code (503: nothing to list)."""
    details: dict[str, Any] = {"redis": catalog().redis_status()}
    try:
        storage().check()
        details["storage"] = "ok"
    except Exception as exc:
        details["storage"] = f"down: {exc}"
    snapshot = catalog().snapshot()
    details["movies"] = snapshot.total()
    serving = details["storage"] == "ok" or bool(snapshot.version)
    if not serving:
        details["status"] = "down"
    elif details["storage"] == "ok" and details["redis"] in ("ok", "off"):
        details["status"] = "ok"
    else:
        details["status"] = "degraded"
    return details, 200 if serving else 503


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The status to anyone, with the details for an operator; never cached."""
    details, code = report()
    body = details if from_this_machine() or has_operator_token() else {
        "status": details["status"]}
    return body, code, {"Cache-Control": "no-store"}
