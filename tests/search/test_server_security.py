"""Server mode security: no API key, no connection (unless insecure); TLS settings reach qdrant-client and
really verify the server; every command with --url applies the same rule; the embedded default is untouched.
No Qdrant server here: a spy stands in for QdrantClient, and a local https server for the TLS check."""
import http.server
import json
import ssl
import threading
from pathlib import Path

import pytest

import cmr_search.search.backends.server as server_mod
from cmr_search.search import connect
from cmr_search.search.errors import IndexMissingError, ServerSecurityError, ServerUnreachableError

URL = "https://qdrant.example.org:6333"


class Spy:
    """Records each QdrantClient(...) call, then refuses like an unreachable server (nothing is contacted)."""
    calls: list[dict] = []

    def __init__(self, **kwargs):
        Spy.calls.append(kwargs)
        raise ServerUnreachableError(kwargs.get("url"), "spy: no server in tests")


@pytest.fixture
def spy(monkeypatch):
    for var in ("QDRANT_URL", "QDRANT_API_KEY", "QDRANT_TLS_CA"):
        monkeypatch.delenv(var, raising=False)
    Spy.calls = []
    monkeypatch.setattr(server_mod, "QdrantClient", Spy)
    return Spy


@pytest.fixture
def ca_file():
    certifi = pytest.importorskip("certifi")
    return certifi.where()          # any valid PEM bundle will do where nothing is contacted


def test_refuses_without_api_key_and_names_both_ways_out(spy):
    with pytest.raises(ServerSecurityError) as e:
        connect(url=URL)
    msg = str(e.value)
    assert URL in msg and "QDRANT_API_KEY" in msg and "--api-key" in msg and "--insecure" in msg
    assert "insecure=True" in msg and e.value.usage
    assert spy.calls == []                                        # refused before any client was made


def test_default_url_from_environment_is_refused_too(spy, monkeypatch):
    monkeypatch.setenv("QDRANT_URL", URL)
    with pytest.raises(ServerSecurityError):
        connect()
    assert spy.calls == []


@pytest.mark.parametrize("env_key, arg_key, insecure, expect", [
    ("from-env", None, False, "from-env"), ("from-env", "from-arg", False, "from-arg"),
    (None, "from-arg", False, "from-arg"), (None, None, True, None),
])
def test_api_key_reaches_qdrant_client(spy, monkeypatch, env_key, arg_key, insecure, expect):
    if env_key:
        monkeypatch.setenv("QDRANT_API_KEY", env_key)
    with pytest.raises(ServerUnreachableError):
        connect(url=URL, api_key=arg_key, insecure=insecure)
    (kw,) = spy.calls
    assert kw["url"] == URL and kw["api_key"] == expect and "verify" not in kw


def test_private_ca_reaches_qdrant_client_as_a_verifying_context(spy, monkeypatch, ca_file):
    with pytest.raises(ServerUnreachableError):
        connect(url=URL, api_key="k", tls_ca=ca_file)
    monkeypatch.setenv("QDRANT_TLS_CA", ca_file)
    with pytest.raises(ServerUnreachableError):
        connect(url=URL, api_key="k")
    for kw in spy.calls:
        ctx = kw["verify"]
        assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509_ca"] > 0


def test_bad_tls_settings_are_clear_errors(spy, tmp_path, ca_file):
    with pytest.raises(ServerSecurityError, match="not an https:// URL"):
        connect(url="http://qdrant:6333", api_key="k", tls_ca=ca_file)
    with pytest.raises(ServerSecurityError, match=r"nope\.pem cannot be used.*--tls-ca"):
        connect(url=URL, api_key="k", tls_ca=tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ServerSecurityError, match="junk.pem cannot be used"):
        connect(url=URL, api_key="k", tls_ca=tmp_path / "junk.pem")
    assert spy.calls == []


def test_embedded_default_needs_no_key(spy, tmp_path):
    from cmr_search.search import Store
    with Store.open(tmp_path, dim=4) as s:                        # no url: the in-process engine
        assert s.backend.name == "embedded" and s.count() == 0
    assert spy.calls == []


def test_streamlit_app_opens_the_embedded_store_unless_told(spy, tmp_path, monkeypatch):
    """The app (ui/app/state.py) opens its data folder's embedded store; only `cmr ui --url` (which sets
    CMR_UI_URL) points it at a server, so QDRANT_URL alone never applies."""
    import cmr_search.ui.app.state as state
    monkeypatch.setenv("QDRANT_URL", URL)
    monkeypatch.delenv("CMR_UI_URL", raising=False)
    state._client.clear()
    with pytest.raises(IndexMissingError):
        state._client(str(tmp_path))                              # data given: embedded, URL ignored
    state._client.clear()
    with pytest.raises(IndexMissingError):
        connect(tmp_path)
    assert spy.calls == []


# ---- every command with --url ------------------------------------------------------------------------
COMMANDS = [
    ("search", ["amyloid"]), ("similar", ["0123456789abcdef0123"]), ("label", []),
    ("cohort", ["export", "--query", "amyloid", "--out", "OUT/c.csv"]), ("index", []), ("index", ["push"]),
]


def _argv(verb, extra, tmp_path, *more):
    return [verb, *(a.replace("OUT", str(tmp_path)) for a in extra), "--url", URL, *more]


@pytest.mark.parametrize("verb, extra", COMMANDS, ids=[" ".join([v, *e[:1]]) for v, e in COMMANDS])
def test_every_url_command_refuses_without_a_key(spy, tmp_path, capsys, verb, extra):
    from cmr_search.ui.cli import main
    assert main(_argv(verb, extra, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "without an API key" in err and "--insecure" in err and "QDRANT_API_KEY" in err
    assert spy.calls == []


@pytest.mark.parametrize("verb, extra", [c for c in COMMANDS if c[0] != "index"] + [("index", ["push"])],
                         ids=lambda v: v if isinstance(v, str) else " ".join(v[:1]))
def test_every_url_command_passes_key_and_ca_through(spy, tmp_path, capsys, ca_file, verb, extra):
    from cmr_search.ui.cli import main
    if verb == "index":                                           # push reads the embedded index first
        from cmr_search.search import Store
        Store.open(tmp_path / "d", dim=4).close()
        extra = [*extra, "--data", str(tmp_path / "d")]
    assert main(_argv(verb, extra, tmp_path, "--api-key", "k", "--tls-ca", ca_file)) == 1
    assert "spy: no server" in capsys.readouterr().err
    (kw,) = spy.calls
    assert kw["url"] == URL and kw["api_key"] == "k" and isinstance(kw["verify"], ssl.SSLContext)


def test_insecure_flag_lets_a_keyless_server_through(spy, tmp_path, capsys):
    from cmr_search.ui.cli import main
    assert main(["search", "amyloid", "--url", URL, "--insecure"]) == 1
    (kw,) = spy.calls
    assert kw["api_key"] is None


# ---- TLS for real: a local https server signed by a private CA -------------------------------------
def _pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for localhost / 127.0.0.1 signed by it (PEM files)."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime as dt
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, issuer, key, sign_key, ca, san=None):
        now = dt.datetime.now(dt.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])   # noqa: E731
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("cmr-test CA"), name("cmr-test CA"), ca_key, ca_key, True)
    srv = cert(name("localhost"), ca.subject, srv_key, ca_key, False,
               [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    pem = serialization.Encoding.PEM
    paths = tmp_path / "ca.pem", tmp_path / "srv.pem", tmp_path / "srv.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(srv.public_bytes(pem))
    paths[2].write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


class _FakeQdrant(http.server.BaseHTTPRequestHandler):
    """Answers every GET like a Qdrant server without the collection; records the API key it got."""
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):                                             # noqa: N802 (http.server's name)
        _FakeQdrant.seen.append((self.path, self.headers.get("api-key")))
        body = json.dumps({"result": {"exists": False}, "status": "ok", "time": 0.0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    for var in ("QDRANT_URL", "QDRANT_API_KEY", "QDRANT_TLS_CA", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    ca, crt, key = _pki(tmp_path)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeQdrant)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    _FakeQdrant.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{srv.server_address[1]}", ca
    srv.shutdown()
    srv.server_close()


def test_tls_with_the_private_ca_reaches_the_server_with_the_key(https_server):
    url, ca = https_server
    with pytest.raises(IndexMissingError):                        # it answered: no collection there
        connect(url=url, api_key="s3cret", tls_ca=ca, timeout=5)
    assert ("/collections/cmr_studies/exists", "s3cret") in _FakeQdrant.seen


def test_tls_without_the_ca_fails_before_the_key_is_sent(https_server):
    url, _ = https_server
    with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        connect(url=url, api_key="s3cret", timeout=5)
    assert _FakeQdrant.seen == []                                 # the handshake failed: no request at all
