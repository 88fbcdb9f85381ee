"""DNS rebinding (issue 22, item 1): the workbench answers only to the host names it is served under.

A real `cmr ui` on a free localhost port (an empty data folder: nothing here runs the app script) is sent
requests with forged Host headers, as a page on evil.example would after rebinding its name to
127.0.0.1: plain pages, /_stcore/health and the websocket upgrade get 403; the loopback names and a name
given with --allow-host are served. Then the allow-list itself, without a server.
"""
from __future__ import annotations

import asyncio
import base64
import http.client
import os
import socket

import pytest

from tests.helpers.browser import serve

EXTRA = "workbench.test"                          # the name given with --allow-host


def _get(port: int, host: str, path: str = "/") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def _upgrade(port: int, host: str, origin: str | None = None) -> int:
    """The status line of a websocket upgrade to /_stcore/stream with this Host (and Origin)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: streamlit",
             f"Origin: {origin or 'http://' + host}"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(s.recv(4096).split(b"\r\n", 1)[0].split()[1])


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    """`cmr ui --allow-host workbench.test` on a free port (tests/helpers/browser.serve); stopped at the end."""
    data = tmp_path_factory.mktemp("guard") / "data"
    (data / "index").mkdir(parents=True)
    with serve(data, timeout=90, extra=("--allow-host", EXTRA)) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/_stcore/host-config", "/static/nothing.js",
                                  "/?study=abc"])
def test_another_host_gets_403(port, path):
    assert _get(port, f"evil.example:{port}", path) == 403
    assert _get(port, "evil.example", path) == 403


def test_websocket_from_another_host_refused(port):
    assert _upgrade(port, f"evil.example:{port}") == 403
    assert _upgrade(port, f"127.0.0.1.evil.example:{port}") == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST", EXTRA])
def test_served_names_allowed(port, host):
    assert _get(port, f"{host}:{port}") == 200
    assert _get(port, f"{host}:{port}", "/_stcore/health") == 200
    assert _upgrade(port, f"{host}:{port}") == 101


def test_malformed_or_repeated_host_refused(port):
    assert _get(port, f"localhost@evil.example:{port}") == 403
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", "/", skip_host=True)
    conn.putheader("Host", f"127.0.0.1:{port}")
    conn.putheader("Host", f"evil.example:{port}")
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    assert status in (400, 403)                    # the server's parser or the guard: never served


def test_host_parsing():
    from cmr_search.ui.app.host_guard import allowed_hosts, host_name, host_of
    assert host_of("Example.ORG.:8501") == "example.org" and host_of("[::1]:8501") == "::1"
    assert host_of("127.0.0.1") == "127.0.0.1"
    assert host_of(None) is None and host_of("") is None and host_of("a b") is None
    assert host_of("localhost@evil.example") is None and host_of("evil/x") is None
    assert host_name("::1") == "::1" and host_name("cmr.lab:8600") == "cmr.lab" and host_name("x y") is None
    assert allowed_hosts("") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts(" cmr.lab , 10.0.0.5:8501,, x y") == {"localhost", "127.0.0.1", "::1", "cmr.lab",
                                                               "10.0.0.5"}


def _call(guard, kind: str, headers: list[tuple[bytes, bytes]]) -> list[dict]:
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "app"})

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)
    guard.app = app
    asyncio.run(guard(dict(type=kind, headers=headers), receive, send))
    return sent


def test_guard_answers_403_for_http_and_websocket():
    from cmr_search.ui.app.host_guard import HostGuard, allowed_hosts
    guard = HostGuard(None, allowed=allowed_hosts("cmr.lab"))
    assert _call(guard, "http", [(b"host", b"cmr.lab:1")]) == [{"type": "app"}]
    assert _call(guard, "http", [(b"host", b"evil.example")])[0]["status"] == 403
    assert _call(guard, "http", [])[0]["status"] == 403
    assert _call(guard, "websocket", [(b"host", b"evil.example")]) == [{"type": "websocket.close", "code": 1008}]
    assert _call(guard, "websocket", [(b"host", b"localhost:8501")]) == [{"type": "app"}]
    assert _call(guard, "lifespan", []) == [{"type": "app"}]


def _env(*argv: str) -> str:
    from cmr_search.ui.ui_cmd import build_parser, environment
    return environment(build_parser().parse_args(["--data", ".", *argv]))["CMR_UI_ALLOW_HOSTS"]


def test_cmr_ui_allow_host_option(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CMR_UI_ALLOW_HOSTS", "inherited.example")       # never taken from the caller
    assert _env() == ""
    assert _env("--allow-host", "a.lab", "--allow-host", "B.lab:9000", "--allow-host", "localhost") == "a.lab,b.lab"
    assert _env("--host", "10.1.2.3") == "10.1.2.3"
    assert _env("--host", "0.0.0.0") == "" and _env("--host", "::") == ""
    from cmr_search.ui.ui_cmd import main
    assert main(["--data", str(tmp_path), "--allow-host", "a b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a host name" in err
