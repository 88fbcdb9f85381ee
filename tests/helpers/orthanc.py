"""A real Orthanc PACS with its DICOMweb plugin, on a free loopback port, for the DICOMweb tests.

    with Orthanc(tmp_path / "pacs", users={"u": "p"}) as pacs:     # users: HTTP basic auth on
        pacs.upload(files)                                         # POST /instances
        url = pacs.dicomweb                                        # http://127.0.0.1:PORT/dicom-web

Debian's packages (`make orthanc`: apt-get install orthanc orthanc-dicomweb); ORTHANC_MISSING says why a
test skips when they are not installed. Storage and index live in the given folder; the DICOM port is off.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import requests

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ORTHANC_MISSING = (None if os.path.exists(ORTHANC) and os.path.exists(DICOMWEB_PLUGIN) else
                   f"{ORTHANC} or {DICOMWEB_PLUGIN} missing: `make orthanc` (apt-get install orthanc "
                   "orthanc-dicomweb) to run the DICOMweb tests")
START_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    """One Orthanc process over `folder` (config, storage, log); stopped on exit."""

    def __init__(self, folder: str | Path, users: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.port = free_port()
        self.users = users
        self.auth = next(iter(users.items())) if users else None
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.url}/dicom-web"
        self.proc: subprocess.Popen | None = None

    def config(self) -> dict:
        store = self.folder / "db"
        store.mkdir(parents=True, exist_ok=True)
        cfg = {"Name": "cmr-test", "StorageDirectory": str(store), "IndexDirectory": str(store),
               "HttpPort": self.port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
               "AuthenticationEnabled": bool(self.users), "Plugins": [DICOMWEB_PLUGIN],
               "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        if self.users:
            cfg["RegisteredUsers"] = self.users
        return cfg

    def __enter__(self) -> "Orthanc":
        path = self.folder / "orthanc.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.config(), indent=1))
        self.log = open(self.folder / "orthanc.log", "wb")
        self.proc = subprocess.Popen([ORTHANC, str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self._wait()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): {self.folder / 'orthanc.log'}")
            try:
                if requests.get(f"{self.url}/system", auth=self.auth, timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.2)                # wakes at once if Orthanc dies; else ask /system again
        raise RuntimeError(f"Orthanc did not answer /system within {START_S:.0f} s")

    def upload(self, files) -> int:
        """POST each file to /instances; -> how many were stored (every one must be accepted)."""
        with requests.Session() as s:
            s.auth = self.auth
            for f in files:
                r = s.post(f"{self.url}/instances", data=Path(f).read_bytes(), timeout=30)
                r.raise_for_status()
        return len(files)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
