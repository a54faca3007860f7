"""API keys that name tenants: the keys file's lines and its errors (file and line named, no
key shown), lookups by the `authorization: Bearer` of gRPC metadata and HTTP headers, every
stored digest compared whatever matches, the file read again when it is rewritten or its
Secret link swapped (a malformed or missing file keeps the keys loaded), and `stt keys new`
run as a command."""

import hashlib
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.router import keys
from services.router.keys import ApiKeys, KeysFileError, bearer, new_key, parse

ROOT = Path(__file__).resolve().parent.parent


def line_for(tenant: str, key: str) -> str:
    return f"{tenant} sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_comments_and_blank_lines():
    upper = hashlib.sha256(b"key-b").hexdigest().upper()
    text = "\n".join(
        [
            "# keys of the two teams",
            "",
            line_for("team-a", "key-a"),
            f"   team-b@example.org sha256:{upper}   # rotated in May",
            "\t",
            line_for("team-a", "key-a2"),
        ]
    )
    entries = parse(text, "keys")
    assert [e.tenant for e in entries] == ["team-a", "team-b@example.org", "team-a"]
    assert entries[1].digest == hashlib.sha256(b"key-b").digest()
    assert parse("", "keys") == () and parse("# none yet\n", "keys") == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("team-a", "expected `TENANT sha256:HEX`, not 1 fields"),
        ("team-a sha256:" + "a" * 64 + " extra", "not 3 fields"),
        ("team a!/ sha256:" + "a" * 64, "not 3 fields"),
        ("team/a sha256:" + "a" * 64, "a tenant is 1 to 128 characters"),
        ("t" * 129 + " sha256:" + "a" * 64, "a tenant is 1 to 128 characters"),
        ("team-a " + "a" * 64, "expected sha256: and the 64 hex digits"),
        ("team-a sha256:" + "a" * 63, "expected sha256: and the 64 hex digits"),
        ("team-a sha256:" + "g" * 64, "expected sha256: and the 64 hex digits"),
        ("team-a md5:" + "a" * 32, "expected sha256: and the 64 hex digits"),
        ("team-a stt_SECRETSECRETSECRET", "the file holds no key itself"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_number_without_its_content(line, message):
    text = f"# first\n{line_for('team-z', 'key-z')}\n\n{line}\n"
    with pytest.raises(KeysFileError) as refused:
        parse(text, "keys file /etc/stt/keys")
    assert str(refused.value).startswith("keys file /etc/stt/keys line 4: ")
    assert message in str(refused.value)
    assert "SECRET" not in str(refused.value)


def test_the_same_key_twice_is_an_error():
    text = f"{line_for('team-a', 'k')}\n{line_for('team-b', 'k')}\n"
    with pytest.raises(KeysFileError, match="line 2: the same key as line 1"):
        parse(text, "keys")


def test_start_up_errors_name_the_file(tmp_path):
    with pytest.raises(KeysFileError, match=r"missing\.keys cannot be read"):
        ApiKeys(tmp_path / "missing.keys")
    bad = tmp_path / "bad.keys"
    bad.write_text(f"{line_for('team-a', 'k')}\nteam-b oops\n")
    with pytest.raises(KeysFileError, match=r"keys file .*bad\.keys line 2: "):
        ApiKeys(bad)


def test_bearer_from_grpc_metadata_and_http_headers(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"{line_for('team-a', 'stt_a')}\n{line_for('team-b', 'stt_b')}\n")
    api_keys = ApiKeys(path)
    assert len(api_keys) == 2
    assert api_keys.tenant("stt_a") == "team-a" and api_keys.tenant("stt_b") == "team-b"
    assert api_keys.tenant("stt_c") is None and api_keys.tenant("") is None
    metadata = (("x-request-id", "r1"), ("authorization", "Bearer stt_b"))
    assert api_keys.tenant_of(metadata) == "team-b"
    assert api_keys.tenant_of([("Authorization", "bearer   stt_a ")]) == "team-a"
    for refused in (
        (),
        (("authorization", "Basic c3R0X2E="),),
        (("authorization", "Bearer"),),
        (("authorization", "Bearer "),),
        (("authorization", "stt_a"),),
        (("authorization", b"Bearer stt_a"),),
        (("authorization", "Bearer stt_a"), ("authorization", "Bearer stt_b")),
        (("x-api-key", "stt_a"),),
    ):
        assert api_keys.tenant_of(refused) is None
    assert bearer([("authorization", "Bearer stt_a")]) == "stt_a"
    # The same key sent twice (Riva's client over TLS: as call credentials and as metadata).
    assert bearer([("authorization", "Bearer stt_a"), ("authorization", "Bearer stt_a")]) == "stt_a"


def test_every_digest_is_compared_whichever_matches(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    path.write_text("".join(f"{line_for(f'team-{i}', f'key-{i}')}\n" for i in range(50)))
    api_keys = ApiKeys(path)
    compared = []
    real = keys.hmac.compare_digest

    def counting(a, b):
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", counting)
    for key, tenant in (("key-0", "team-0"), ("key-49", "team-49"), ("nobody", None)):
        compared.clear()
        assert api_keys.tenant(key) == tenant
        assert len(compared) == 50


def test_a_rewritten_file_is_read_again_and_a_malformed_one_keeps_the_keys(tmp_path, caplog):
    path = tmp_path / "keys"
    path.write_text(line_for("team-a", "stt_old") + "\n")
    clock = Clock()
    api_keys = ApiKeys(path, clock=clock)
    path.write_text(line_for("team-a", "stt_new") + "\n")
    assert api_keys.tenant("stt_old") == "team-a"  # looked at no more than once a second
    clock.now += 1.0
    assert api_keys.tenant("stt_new") == "team-a" and api_keys.tenant("stt_old") is None
    path.write_text(line_for("team-a", "stt_new") + "\nteam-b stt_RAWKEYRAWKEY\n")
    with caplog.at_level(logging.INFO, logger="stt.keys"):
        for _ in range(3):
            clock.now += 1.0
            assert api_keys.tenant("stt_new") == "team-a"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "line 2" in errors[0].error
    assert all("RAWKEY" not in r.getMessage() + str(vars(r)) for r in caplog.records)
    path.unlink()
    clock.now += 1.0
    assert api_keys.tenant("stt_new") == "team-a"  # a file gone keeps the keys too
    path.write_text(line_for("team-c", "stt_c") + "\n")
    clock.now += 1.0
    assert api_keys.tenant("stt_c") == "team-c" and api_keys.tenant("stt_new") is None


def test_a_secret_renewed_by_a_link_swap_is_read_again(tmp_path):
    # A Kubernetes Secret volume: `keys` -> `..data/keys`, `..data` -> the current version.
    for version, key in (("v1", "stt_one"), ("v2", "stt_two")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "keys").write_text(line_for("team-a", key) + "\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "keys").symlink_to(Path("..data") / "keys")
    clock = Clock()
    api_keys = ApiKeys(tmp_path / "keys", clock=clock)
    assert api_keys.tenant("stt_one") == "team-a"
    (tmp_path / "..data-new").symlink_to("v2")
    os.replace(tmp_path / "..data-new", tmp_path / "..data")
    clock.now += 1.0
    assert api_keys.tenant("stt_two") == "team-a" and api_keys.tenant("stt_one") is None


def test_new_keys_are_random_and_their_lines_parse():
    key, line = new_key("team-a")
    again, _ = new_key("team-a")
    assert key.startswith("stt_") and len(key) >= 4 + 43 and key != again
    assert key not in line
    (entry,) = parse(line, "keys")
    assert entry.tenant == "team-a" and entry.digest == hashlib.sha256(key.encode()).digest()
    with pytest.raises(ValueError, match="a tenant is 1 to 128 characters"):
        new_key("team a")


def test_append_line_makes_an_owner_only_file_and_keeps_lines_apart(tmp_path):
    path = tmp_path / "keys"
    keys.append_line(path, line_for("team-a", "a"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text(path.read_text().rstrip("\n"))  # a file edited by hand, no last newline
    keys.append_line(path, line_for("team-b", "b"))
    assert [e.tenant for e in parse(path.read_text(), "keys")] == ["team-a", "team-b"]
    shared = tmp_path / "shared"
    shared.write_text("")
    shared.chmod(0o640)
    keys.append_line(shared, line_for("team-a", "a"))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640  # an existing file keeps its mode


def stt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"},
    )


def test_stt_keys_new(tmp_path):
    path = tmp_path / "secrets" / "keys"
    path.parent.mkdir()
    first = stt("keys", "new", "team-a", "--file", str(path))
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key.startswith("stt_") and first.stdout == key + "\n"
    assert first.stderr.strip() == line_for("team-a", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = stt("keys", "new", "team-b", "--file", str(path))
    printed = stt("keys", "new", "team-c")  # no file: the line is only printed
    assert second.returncode == 0 and printed.returncode == 0
    api_keys = ApiKeys(path)
    assert api_keys.tenant(key) == "team-a"
    assert api_keys.tenant(second.stdout.strip()) == "team-b"
    assert api_keys.tenant(printed.stdout.strip()) is None and len(api_keys) == 2
    assert printed.stderr.strip() == line_for("team-c", printed.stdout.strip())
    refused = stt("keys", "new", "team/a", "--file", str(path))
    assert refused.returncode == 2 and refused.stdout == ""
    assert "a tenant is 1 to 128 characters" in refused.stderr
    unwritable = stt("keys", "new", "team-d", "--file", str(tmp_path / "no-such-dir" / "keys"))
    assert unwritable.returncode == 1 and unwritable.stdout == ""
    assert "cannot add the key" in unwritable.stderr
    assert len(ApiKeys(path)) == 2
