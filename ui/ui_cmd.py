"""`cmr ui`: start the cohort workbench (Streamlit) on this machine.

    cmr ui                          # ./cmr-data (or $CMR_DATA) on http://127.0.0.1:8501
    cmr ui --data cmr-data --port 8600 --host 0.0.0.0 --allow-host cmr.lab   # no login: docs/privacy.md
    cmr ui --data cmr-data --url https://qdrant:6333     # index on a Qdrant server ($QDRANT_API_KEY);
                                                         # DATA still holds the cache (images) and model

The settings are Settings.from_env's (search/settings.py): $QDRANT_URL applies even with --data, and the
app (ui/app/state.py) is handed the server as $CMR_UI_URL, so that $QDRANT_URL alone never points it away
from its data folder. Runs `streamlit run ui/app/workbench.py` headless, without usage statistics, bound to
localhost unless --host says otherwise, with uploads limited to the query-by-example size
(ui/app/upload_limits.py). The workbench answers only to the host names it is served under (DNS rebinding,
ui/app/host_guard.py): localhost, 127.0.0.1 and [::1], the --host address (unless 0.0.0.0 or ::), and each
--allow-host NAME; any other Host header gets 403.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from cmr_search.search.settings import Settings
from cmr_search.ui.app.host_guard import ENV as ALLOW_HOSTS_ENV
from cmr_search.ui.app.host_guard import LOOPBACK, host_name
from cmr_search.ui.app.upload_limits import MAX_UPLOAD_MB
from cmr_search.ui.search_cmd import add_server_security_args

APP = Path(__file__).resolve().parent / "app" / "workbench.py"     # main.py behind the Host allow-list
ANY_ADDRESS = ("0.0.0.0", "::", "")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cmr ui", description="Start the cohort workbench (Streamlit).",
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CMR_DATA or ./cmr-data)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer to this host name (repeatable; default: localhost, 127.0.0.1, [::1] and "
                   "the --host address); requests naming any other host get 403 (DNS rebinding)")
    g = p.add_argument_group("Qdrant server (default: the embedded index in DATA/index)")
    g.add_argument("--url", default=None, help="Qdrant server URL (default $QDRANT_URL; unset = embedded), "
                   "so that `cmr index` can write while the UI serves")
    g.add_argument("--api-key", default=None, help="Qdrant API key (default $QDRANT_API_KEY)")
    add_server_security_args(g)
    return p


def settings_from(args) -> Settings:
    """--data, --url, --api-key, --tls-ca, --insecure over the environment (Settings.from_env)."""
    return Settings.from_env(data=args.data, url=args.url, api_key=args.api_key, tls_ca=args.tls_ca,
                             insecure=args.insecure)


def command(args) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--server.address", args.host, "--server.port", str(args.port),
            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(MAX_UPLOAD_MB),
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal"]


def allowed_hosts(args) -> list[str]:
    """The host names the workbench answers to besides the loopback ones: --host (a specific address)
    and each --allow-host; ValueError names one that is not a host name."""
    given = ([] if args.host in ANY_ADDRESS else [args.host]) + args.allow_host
    names = []
    for g in given:
        if (name := host_name(g)) is None:
            raise ValueError(f"{g!r} (--host, --allow-host) is not a host name; give a name such as "
                             "cmr.lab.example or an address")
        names.append(name)
    return [n for n in dict.fromkeys(names) if n not in LOOPBACK]


def environment(args) -> dict[str, str]:
    """The app's environment: the settings given as flags, as the variables Settings reads there."""
    settings = settings_from(args)
    env = dict(os.environ)
    if args.data is not None:
        env["CMR_DATA"] = str(settings.data.resolve())
    if settings.url:                         # read by ui/app/state.py
        env["CMR_UI_URL"] = settings.url
        if args.api_key:
            env["QDRANT_API_KEY"] = settings.api_key
        if args.insecure:
            env["CMR_UI_INSECURE"] = "1"
        if args.tls_ca:
            env["QDRANT_TLS_CA"] = str(Path(settings.tls_ca).resolve())
    env[ALLOW_HOSTS_ENV] = ",".join(allowed_hosts(args))   # only the flags count, never an inherited value
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    root = str(APP.parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        allowed_hosts(args)
    except ValueError as e:
        print(f"cmr ui: {e}.", file=sys.stderr)
        return 2
    settings = settings_from(args)
    data, url = settings.data, settings.url
    if settings.missing_api_key:
        print(f"cmr ui: the Qdrant server {url} needs an API key: pass --api-key or set QDRANT_API_KEY "
              "(or --insecure on a network you trust).", file=sys.stderr)
        return 2
    if settings.embedded and not settings.folder.index.exists():
        print(f"cmr ui: no index in {settings.folder.index}; build one with `cmr index` (or pass --data).",
              file=sys.stderr)
        return 1
    where = f"index {url}, data {data}" if url else f"data {data}"
    print(f"cmr ui: http://{args.host}:{args.port}  ({where}; Ctrl+C stops)", flush=True)
    if args.host in ANY_ADDRESS and not args.allow_host:
        print("cmr ui: bound to every address, but it answers only to localhost, 127.0.0.1 and [::1]; "
              "pass --allow-host NAME for the name (or address) other machines open it by.", flush=True)
    cmd, env = command(args), environment(args)
    if os.name == "posix":             # become the server: a signal to `cmr ui` reaches Streamlit itself
        sys.stdout.flush()
        os.execve(cmd[0], cmd, env)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
