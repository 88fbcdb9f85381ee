"""The workbench answers only to its own host names: an ASGI middleware against DNS rebinding.

A web page on evil.example can make a browser resolve evil.example to 127.0.0.1 and then read the
workbench as "its own" site: the request reaches the loopback server with `Host: evil.example:8501`, and
Streamlit's Origin check (Origin equals Host) passes. HostGuard answers 403 to any request, the websocket
upgrade (/_stcore/stream), static files and /_stcore/health included, whose Host header names another
host than the allowed ones: the loopback names (localhost, 127.0.0.1, ::1) with any port, plus the names
in $CMR_UI_ALLOW_HOSTS (comma separated; `cmr ui --allow-host NAME` and `--host ADDRESS` set it).
ui/app/workbench.py puts it in front of Streamlit (st.App); docs/privacy.md says what it does not cover.
"""
from __future__ import annotations

import os
import re

from starlette.responses import PlainTextResponse

ENV = "CMR_UI_ALLOW_HOSTS"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# a Host header: a DNS name or IPv4 address, or a bracketed IPv6 address; then an optional port
HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::\d{1,5})?")
REFUSED = ("403 Forbidden: this workbench answers only to the host names it is served under; "
           "start it with `cmr ui --allow-host NAME` to open it as NAME.")


def normal_name(name: str) -> str:
    """A host name as compared: lower case, without brackets or a final dot."""
    return name.strip().strip("[]").rstrip(".").lower()


def host_of(header: str | None) -> str | None:
    """The host name in a Host header (without port), or None for a missing or malformed one."""
    m = HOST_HEADER.fullmatch((header or "").strip())
    return normal_name(m.group("v6") or m.group("name")) if m else None


def host_name(given: str) -> str | None:
    """A name as a user gives it (`cmr.lab`, `10.0.0.5:8501`, `::1`, `[::1]:8501`) -> the name compared, or
    None when it is not a host name."""
    given = given.strip()
    bare_v6 = given.count(":") > 1 and not given.startswith("[")
    return host_of(f"[{given}]" if bare_v6 else given)


def allowed_hosts(env: str | None = None) -> frozenset[str]:
    """The loopback names and those in $CMR_UI_ALLOW_HOSTS (or `env`); malformed entries are ignored."""
    extra = os.environ.get(ENV, "") if env is None else env
    return frozenset(LOOPBACK) | {n for n in map(host_name, extra.split(",")) if n}


class HostGuard:
    """ASGI middleware: requests (HTTP and websocket) whose Host is not allowed get 403."""

    def __init__(self, app, allowed: frozenset[str] | None = None) -> None:
        self.app = app
        self.allowed = allowed_hosts() if allowed is None else frozenset(normal_name(n) for n in allowed)

    def permits(self, scope) -> bool:
        """Exactly one Host header, naming an allowed host."""
        hosts = [v for k, v in scope.get("headers") or () if k.lower() == b"host"]
        return len(hosts) == 1 and host_of(hosts[0].decode("latin-1")) in self.allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or self.permits(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":       # closed before accept: the server answers 403 (ASGI spec)
            await send({"type": "websocket.close", "code": 1008})
        else:
            await PlainTextResponse(REFUSED, status_code=403)(scope, receive, send)
