"""The job URI policy as pure logic, with no network at all: which addresses are global (every
special-purpose range and the IPv6 forms that carry an IPv4 address), host entries and
patterns, the settings, the allowlists over a resolver made up by the test (no socket is
opened), and file roots (inside, outside, a symlink out, `..`)."""

import os
import socket
from ipaddress import ip_address

import pytest
from pydantic import ValidationError

from services.core.errors import InvalidArgument, PermissionDenied
from services.jobs.addresses import is_global, refusal
from services.jobs.host_patterns import host_pattern, host_port
from services.jobs.uri_policy import UriPolicy, UriPolicySettings

REFUSED_V4 = {
    "0.0.0.0": "unspecified (this network)",
    "0.1.2.3": "unspecified (this network)",
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "100.64.0.1": "shared address space",
    "100.127.255.254": "shared address space",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.0.1": "link-local",
    "169.254.169.254": "link-local",  # the cloud metadata address
    "169.254.255.255": "link-local",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.0.0.8": "IETF protocol assignment",
    "192.0.2.1": "documentation",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.1.1": "private",
    "198.18.0.1": "benchmarking",
    "198.19.255.255": "benchmarking",
    "198.51.100.1": "documentation",
    "203.0.113.1": "documentation",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
}
REFUSED_V6 = {
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "febf:ffff::1": "link-local",
    "fc00::1": "unique-local",
    "fd12:3456:789a::1": "unique-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "2001::1": "IETF protocol assignment",  # Teredo
    "100::1": "discard-only",
    "64:ff9b:1::1": "local-use NAT64",
    "4000::1": "reserved",
}
# IPv6 forms of a refused IPv4 address are refused with it.
CARRIED = {
    "::ffff:127.0.0.1": "IPv4-mapped form of 127.0.0.1, loopback",
    "::ffff:10.1.2.3": "IPv4-mapped form of 10.1.2.3, private",
    "::ffff:169.254.169.254": "IPv4-mapped form of 169.254.169.254, link-local",
    "::ffff:100.64.0.1": "IPv4-mapped form of 100.64.0.1, shared address space",
    "::ffff:0.0.0.0": "IPv4-mapped form of 0.0.0.0, unspecified (this network)",
    "::ffff:224.0.0.1": "IPv4-mapped form of 224.0.0.1, multicast",
    "2002:7f00:1::1": "6to4 form of 127.0.0.1, loopback",
    "2002:a00:1::": "6to4 form of 10.0.0.1, private",
    "2002:a9fe:a9fe::1": "6to4 form of 169.254.169.254, link-local",
    "64:ff9b::7f00:1": "NAT64 form of 127.0.0.1, loopback",
    "64:ff9b::a9fe:a9fe": "NAT64 form of 169.254.169.254, link-local",
    "64:ff9b::c0a8:101": "NAT64 form of 192.168.1.1, private",
    "::127.0.0.1": "IPv4-compatible (deprecated) form of 127.0.0.1",
    "::8.8.8.8": "IPv4-compatible (deprecated) form of 8.8.8.8",
}
GLOBAL = [
    "8.8.8.8",
    "1.1.1.1",
    "11.0.0.1",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.169.0.1",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "2002:808:808::1",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", [*REFUSED_V4, *REFUSED_V6, *CARRIED])
def test_every_non_global_range_is_refused_with_its_name(address):
    expected = REFUSED_V4.get(address) or REFUSED_V6.get(address) or CARRIED[address]
    assert refusal(ip_address(address)) == expected
    assert not is_global(ip_address(address))


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address):
    assert refusal(ip_address(address)) is None
    assert is_global(ip_address(address))


def test_range_edges():
    assert refusal(ip_address("100.64.0.0")) == refusal(ip_address("100.127.255.255"))
    assert is_global(ip_address("100.63.255.255")) and is_global(ip_address("100.128.0.0"))
    assert refusal(ip_address("169.254.0.0")) == refusal(ip_address("169.254.255.255"))
    assert not is_global(ip_address("fe80::")) and not is_global(ip_address("febf:ffff::ffff"))
    assert refusal(ip_address("fec0::")) == "site-local"


def test_host_entries_and_patterns():
    assert host_port("Minio.Svc.:9000") == ("minio.svc", 9000)
    assert host_port("localhost") == ("localhost", None)
    assert host_port("[::1]:8080") == ("::1", 8080)
    assert host_port("0:0::1") == ("::1", None)
    assert host_port("127.0.0.1:443") == ("127.0.0.1", 443)
    for bad in ("", "a:b", "host:0", "host:70000", "[::1", "[::1]x", "bad_host!", "ex ample"):
        with pytest.raises(ValueError):
            host_port(bad)
    exact, wild = host_pattern("Media.Example.com"), host_pattern("*.cdn.example.org")
    assert exact.matches("media.example.com") and not exact.matches("x.media.example.com")
    assert wild.matches("a.cdn.example.org") and wild.matches("a.b.cdn.example.org")
    assert not wild.matches("cdn.example.org") and not wild.matches("evilcdn.example.org")
    assert not wild.matches("cdn.example.org.evil.test")
    for bad in ("*", "*.", "*.10.0.0.1", "host:80", "a/b", "bücher.example"):
        with pytest.raises(ValueError):
            host_pattern(bad)


def test_settings_read_comma_separated_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("JOBS_URI_FILE_ROOTS", f"{tmp_path}/a, {tmp_path}/b,")
    monkeypatch.setenv("JOBS_URI_ALLOWED_PRIVATE_HOSTS", "minio:9000, [::1]:8080")
    monkeypatch.setenv("JOBS_URI_ALLOWED_HOSTS", "*.example.com,media.example.org")
    settings = UriPolicySettings()
    assert [str(p) for p in settings.file_roots] == [f"{tmp_path}/a", f"{tmp_path}/b"]
    assert settings.allowed_private_hosts == ["minio:9000", "[::1]:8080"]
    assert settings.allowed_hosts == ["*.example.com", "media.example.org"]
    assert UriPolicySettings.model_fields.keys() == {
        "file_roots",
        "allowed_private_hosts",
        "allowed_hosts",
    }
    assert all(f.description for f in UriPolicySettings.model_fields.values())
    monkeypatch.setenv("JOBS_URI_ALLOWED_PRIVATE_HOSTS", "minio:99999")
    with pytest.raises(ValidationError, match="minio:99999"):
        UriPolicySettings()
    monkeypatch.setenv("JOBS_URI_ALLOWED_PRIVATE_HOSTS", "")
    monkeypatch.setenv("JOBS_URI_ALLOWED_HOSTS", "*")
    with pytest.raises(ValidationError, match="allowed_hosts"):
        UriPolicySettings()
    monkeypatch.delenv("JOBS_URI_ALLOWED_HOSTS")
    monkeypatch.delenv("JOBS_URI_FILE_ROOTS")
    empty = UriPolicy.from_settings(UriPolicySettings())
    with pytest.raises(PermissionDenied, match="none is set"):
        empty.check((tmp_path / "a.wav").as_uri())


class Resolver:
    """A made-up name service: answers from its table (an IP literal answers itself) and
    counts the questions. Nothing connects to what it answers."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host, port, type=0):
        self.asked.append(host)
        try:
            answers = [ip_address(host).compressed]
        except ValueError:
            if host not in self.table:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            answers = self.table[host]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers
        ]


NAMES = {
    "media.example.com": ["93.184.215.14"],
    "a.cdn.example.org": ["2606:4700::6810:84e5"],
    "cdn.example.org": ["93.184.215.15"],
    "other.example.net": ["93.184.215.16"],
    "mixed.example.com": ["93.184.215.14", "10.0.0.7"],
    "inside.example.com": ["10.0.0.7"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "minio.svc": ["10.0.0.9"],
    "localhost": ["127.0.0.1", "::1"],
}


def test_every_address_a_name_resolves_to_must_be_global():
    resolver = Resolver(NAMES)
    policy = UriPolicy(resolver=resolver)
    policy.check("https://media.example.com/a.flac?X-Sig=1")
    policy.check("http://a.cdn.example.org:8080/a.flac")
    for uri, reason in (
        ("http://mixed.example.com/a", "private"),
        ("http://inside.example.com/a", "private"),
        ("http://mapped.example.com/a", "IPv4-mapped form of 127.0.0.1"),
        ("http://metadata.example.com/latest/meta-data/", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:8080/a", "loopback"),
        ("http://[::ffff:7f00:1]/a", "IPv4-mapped form of 127.0.0.1"),
        ("http://[fd00::1]/a", "unique-local"),
        ("http://100.64.1.1/a", "shared address space"),
        ("http://0.0.0.0/a", "unspecified"),
    ):
        with pytest.raises(PermissionDenied, match="JOBS_URI_ALLOWED_PRIVATE_HOSTS") as refused:
            policy.check(uri)
        assert reason in refused.value.message
        assert "10.0.0.7" not in refused.value.message  # a name's addresses are not shown
    with pytest.raises(InvalidArgument, match="cannot be resolved"):
        policy.check("http://nowhere.example.com/a")


def test_numeric_spellings_of_loopback_are_refused():
    # The system's resolver reads these as numbers (no query leaves the machine).
    policy = UriPolicy()
    for host in ("127.1", "0x7f.0.0.1", "2130706433", "017700000001", "127.0.0.1.", "LOCALHOST"):
        with pytest.raises(PermissionDenied, match="loopback"):
            policy.check(f"http://{host}:8080/a")


def test_allowed_private_hosts_by_host_or_host_and_port():
    resolver = Resolver(NAMES)
    policy = UriPolicy(
        allowed_private_hosts=["minio.svc:9000", "localhost", "[::1]:8080"], resolver=resolver
    )
    policy.check("http://minio.svc:9000/bucket/a.flac")
    policy.check("http://MINIO.svc.:9000/bucket/a.flac")
    policy.check("http://localhost:1234/a")
    policy.check("http://[::1]:8080/a")
    for uri in ("http://minio.svc/a", "http://minio.svc:9001/a", "http://[::1]:8081/a"):
        with pytest.raises(PermissionDenied):
            policy.check(uri)
    with pytest.raises(PermissionDenied):  # the name is listed, not its address
        policy.check("http://127.0.0.1:1234/a")


def test_allowed_hosts_is_an_exact_allowlist():
    resolver = Resolver(NAMES)
    policy = UriPolicy(
        allowed_hosts=["media.example.com", "*.cdn.example.org"],
        allowed_private_hosts=["minio.svc:9000"],
        resolver=resolver,
    )
    policy.check("https://media.example.com/a")
    policy.check("https://a.cdn.example.org/a")
    policy.check("http://minio.svc:9000/a")  # an allowed private host needs no second entry
    for uri in ("https://cdn.example.org/a", "https://other.example.net/a"):
        before = len(resolver.asked)
        with pytest.raises(PermissionDenied, match="not in JOBS_URI_ALLOWED_HOSTS"):
            policy.check(uri)
        assert len(resolver.asked) == before  # refused before any name is looked up
    with pytest.raises(PermissionDenied, match="JOBS_URI_ALLOWED_PRIVATE_HOSTS"):
        UriPolicy(allowed_hosts=["inside.example.com"], resolver=resolver).check(
            "http://inside.example.com/a"
        )


def test_schemes_and_forms():
    policy = UriPolicy(resolver=Resolver(NAMES))
    assert policy.schemes == {"file", "http", "https"}
    for uri in ("ftp://media.example.com/a", "gs://bucket/a", "s3://bucket/a", "data:,x", "a.wav"):
        with pytest.raises(InvalidArgument, match="scheme"):
            policy.check(uri)
    for uri in (
        "http://user:secret@media.example.com/a",
        "http://media.example.com:99999/a",
        "http:///a",
        "http://bücher.example/a",
        "file://host/a.wav",
        "file:relative/a.wav",
        "file:///a%00.wav",
    ):
        with pytest.raises(InvalidArgument) as refused:
            policy.check(uri)
        assert "secret" not in refused.value.message
    policy.check("HTTPS://Media.Example.com/a")


def test_file_roots_inside_outside_links_and_dot_dot(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.wav").write_bytes(b"a")
    (outside / "secret.wav").write_bytes(b"s")
    (root / "out").symlink_to(outside / "secret.wav")
    (root / "dir-out").symlink_to(outside)
    (root / "in").symlink_to(root / "sub" / "a.wav")
    (outside / "into-root").symlink_to(root / "sub" / "a.wav")
    linked_root = tmp_path / "linked-root"
    linked_root.symlink_to(root)
    policy = UriPolicy(file_roots=[linked_root])  # a root is resolved as well
    real = os.path.realpath(root / "sub" / "a.wav")
    assert str(policy.file_path((root / "sub" / "a.wav").as_uri())) == real
    assert str(policy.file_path(f"file://{root}/sub/../sub/a.wav")) == real
    assert str(policy.file_path((root / "in").as_uri())) == real
    assert str(policy.file_path((outside / "into-root").as_uri())) == real
    assert str(policy.file_path(f"file://localhost{root}/sub/a.wav")) == real
    policy.check((root / "sub" / "missing.wav").as_uri())  # judged by path; reading fails later
    for uri in (
        (outside / "secret.wav").as_uri(),
        (root / "out").as_uri(),
        (root / "dir-out" / "secret.wav").as_uri(),
        f"file://{root}/../outside/secret.wav",
        f"file://{root}/sub/%2e%2e/%2e%2e/outside/secret.wav",
        f"file://{root}-sibling/a.wav",
        "file:///etc/shadow",
    ):
        with pytest.raises(PermissionDenied, match="JOBS_URI_FILE_ROOTS") as refused:
            policy.check(uri)
        assert uri.removeprefix("file://") in refused.value.message  # the path as given
    with pytest.raises(PermissionDenied) as refused:
        policy.check((root / "out").as_uri())
    assert str(outside) not in refused.value.message  # where a link leads is not shown
