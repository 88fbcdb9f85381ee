"""Salt file and salted keys."""
import os
import stat

from indexer.identifiers import KEY_CHARS, load_or_create_salt, patient_key, study_key


def test_salt_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "sub" / "salt.key"
    salt = load_or_create_salt(path)
    assert len(salt) == 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_salt(path) == salt


def test_keys_are_stable_salted_hex(tmp_path):
    a, b = load_or_create_salt(tmp_path / "a"), load_or_create_salt(tmp_path / "b")
    k = study_key("1.2.3", a)
    assert k == study_key("1.2.3", a) and len(k) == KEY_CHARS and int(k, 16) >= 0
    assert k != study_key("1.2.3", b) and k != study_key("1.2.4", a)
    assert patient_key("1.2.3", a) != k           # study and patient keys live in different spaces
    assert patient_key("  ", a) == ""
