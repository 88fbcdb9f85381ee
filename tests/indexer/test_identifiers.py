"""Salt file and salted keys: created once (0600, random), reused, never in the repo or the cache, clear
errors when it cannot be used."""
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from cmr_search.indexer.errors import SaltError
from cmr_search.indexer.identifiers import (KEY_CHARS, PROJECT_ROOT, default_salt_path, load_or_create_salt,
                                 patient_key, study_key)


def test_salt_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "sub" / "salt.key"
    salt = load_or_create_salt(path)
    assert len(salt) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_salt(path) == salt
    assert os.listdir(path.parent) == ["salt.key"]                  # no temp file left beside it


def test_salt_is_random_per_file(tmp_path):
    salts = {load_or_create_salt(tmp_path / f"s{i}") for i in range(8)}
    assert len(salts) == 8 and all(len(s) >= 32 for s in salts)
    assert all(len(set(s)) > 16 for s in salts)                      # not a constant or a short pattern


def test_default_location_is_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CMR_SALT_FILE", str(tmp_path / "env.key"))
    assert default_salt_path() == tmp_path / "env.key"
    assert load_or_create_salt() == (tmp_path / "env.key").read_bytes()
    monkeypatch.delenv("CMR_SALT_FILE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_salt_path() == tmp_path / "home" / ".config" / "cmr-search" / "salt.key"
    assert not _is_inside(default_salt_path(), PROJECT_ROOT)


def test_reused_by_the_next_run_in_another_process(tmp_path):
    path = tmp_path / "salt.key"
    key = study_key("1.2.3", load_or_create_salt(path))
    code = ("import sys; from indexer.identifiers import load_or_create_salt, study_key; "
            "print(study_key('1.2.3', load_or_create_salt(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, check=True).stdout.strip()
    assert out == key


def test_keys_are_stable_salted_hex(tmp_path):
    a, b = load_or_create_salt(tmp_path / "a"), load_or_create_salt(tmp_path / "b")
    k = study_key("1.2.3", a)
    assert k == study_key("1.2.3", a) and len(k) == KEY_CHARS and int(k, 16) >= 0
    assert k != study_key("1.2.3", b) and k != study_key("1.2.4", a)
    assert patient_key("1.2.3", a) != k           # study and patient keys live in different spaces
    assert patient_key("  ", a) == ""


def test_keys_differ_under_another_salt_for_every_id(tmp_path):
    a, b = load_or_create_salt(tmp_path / "a"), load_or_create_salt(tmp_path / "b")
    ids = [f"1.2.826.0.{i}" for i in range(200)]
    assert not {study_key(i, a) for i in ids} & {study_key(i, b) for i in ids}
    assert not {patient_key(i, a) for i in ids} & {patient_key(i, b) for i in ids}


@pytest.mark.parametrize("content", [b"", b"short"])
def test_empty_or_short_salt_is_a_clear_error(tmp_path, content):
    path = tmp_path / "salt.key"
    path.write_bytes(content)
    with pytest.raises(SaltError, match=rf"{path}.*holds {len(content)} bytes.*Restore it from backup"):
        load_or_create_salt(path)
    assert path.read_bytes() == content                                 # never overwritten


def test_unreadable_salt_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "salt.key"
    folder.mkdir()                                                      # a folder where the file should be
    with pytest.raises(SaltError, match=rf"{folder} cannot be read.*permissions"):
        load_or_create_salt(folder)
    path = tmp_path / "locked.key"
    path.write_bytes(b"x" * 32)

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "read_bytes", denied)                    # root ignores chmod 000
    with pytest.raises(SaltError, match=r"locked.key cannot be read \(Permission denied\)"):
        load_or_create_salt(path)


def test_loose_permissions_warn(tmp_path):
    path = tmp_path / "salt.key"
    load_or_create_salt(path)
    os.chmod(path, 0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        load_or_create_salt(path)
    os.chmod(path, 0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_or_create_salt(path)


def test_never_created_inside_the_project_or_the_cache(tmp_path):
    inside = PROJECT_ROOT / "tests" / "never-here.key"
    with pytest.raises(SaltError, match="inside the project folder"):
        load_or_create_salt(inside)
    assert not inside.exists()
    cache = tmp_path / "data" / "cache"
    with pytest.raises(SaltError, match="inside .*cache.*--salt-file"):
        load_or_create_salt(cache / "salt.key", not_inside=(cache,))
    assert not (cache / "salt.key").exists()
    assert load_or_create_salt(tmp_path / "data" / "salt.key", not_inside=(cache,))


def test_prepare_refuses_a_salt_inside_its_cache(tmp_path):
    from cmr_search.indexer.prepare import prepare
    (tmp_path / "arch").mkdir()
    with pytest.raises(SaltError):
        prepare(tmp_path / "arch", None, tmp_path / "cache", salt_file=tmp_path / "cache" / "s.key",
                progress=False)


def test_gitignore_covers_salt_files():
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["salt.key", "a/b/salt.key", "x.salt", "cmr-data/cache/anything"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=PROJECT_ROOT, capture_output=True,
                         text=True).stdout.split()
    assert out == names


def _is_inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents
