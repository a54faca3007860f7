"""A job's audio read under the job URI policy, against real HTTP(S) servers on loopback
addresses only (127.0.0.1, 127.0.0.2, `localhost`, [::1]), each counting the requests it
gets: a refused host gets none, an allowed one is fetched, a redirect to a refused host fails
with PERMISSION_DENIED and that host gets nothing, the name is resolved once and the
connection goes where it was checked, TLS verifies the uri's own name; and file roots."""

import contextlib
import os
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import trustme

from services.core.errors import InvalidAudio, PermissionDenied
from services.jobs.uri_policy import UriPolicy
from services.jobs.worker.fetch import MAX_REDIRECTS, Transient, read_uri

TIMEOUT_S = 5


def can_bind(host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


HAS_V6 = can_bind("::1")
HAS_127_2 = can_bind("127.0.0.2")


@contextlib.contextmanager
def site(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
    """A server on `host` that answers each path from `routes` (else 200 "audio") and notes
    every request it gets in `hits` as (path without the query, Host header)."""
    hits: list[tuple[str, str]] = []
    routes: dict[str, tuple[int, dict[str, str]]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.partition("?")[0]
            hits.append((path, self.headers.get("Host", "")))
            status, headers = routes.get(path, (200, {}))
            body = b"audio" if status == 200 else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            """Quiet."""

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        def server_bind(self):
            # No reverse lookup of the address, as HTTPServer's own would make.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = host, self.server_address[1]

    server = Server((host, 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    try:
        yield SimpleNamespace(
            port=server.server_address[1],
            hits=hits,
            routes=routes,
            url=lambda path="/a.flac", name=shown: (
                f"http://{name}:{server.server_address[1]}{path}"
            ),
        )
    finally:
        server.shutdown()
        server.server_close()


def loopback_hosts() -> list[str]:
    return ["127.0.0.1", *(["127.0.0.2"] if HAS_127_2 else []), *(["::1"] if HAS_V6 else [])]


@pytest.mark.parametrize("host", loopback_hosts())
def test_a_loopback_server_is_refused_and_gets_no_request(host):
    with site(host) as server:
        names = [None, "localhost"] if host == "127.0.0.1" else [None]
        if host == "127.0.0.1":
            names += ["127.1", "2130706433", "[::ffff:127.0.0.1]"]
        for name in names:
            url = server.url() if name is None else server.url(name=name)
            with pytest.raises(PermissionDenied, match="JOBS_URI_ALLOWED_PRIVATE_HOSTS"):
                read_uri(url + "?sig=secret", 100, TIMEOUT_S, UriPolicy())
        assert server.hits == []


def test_an_allowed_private_host_is_fetched():
    with site() as server:
        by_port = UriPolicy(allowed_private_hosts=[f"127.0.0.1:{server.port}"])
        assert read_uri(server.url(), 100, TIMEOUT_S, by_port) == b"audio"
        by_name = UriPolicy(allowed_private_hosts=["localhost"])
        assert read_uri(server.url(name="localhost"), 100, TIMEOUT_S, by_name) == b"audio"
        assert server.hits == [
            ("/a.flac", f"127.0.0.1:{server.port}"),
            ("/a.flac", f"localhost:{server.port}"),
        ]
        # The name was allowed, not the address; the port listed, not another.
        with pytest.raises(PermissionDenied):
            read_uri(server.url(), 100, TIMEOUT_S, by_name)
        other = UriPolicy(allowed_private_hosts=[f"127.0.0.1:{server.port + 1}"])
        with pytest.raises(PermissionDenied):
            read_uri(server.url(), 100, TIMEOUT_S, other)
        assert len(server.hits) == 2


def test_an_allowed_host_redirecting_to_a_refused_one_fails_with_nothing_sent_there():
    with site() as allowed, site() as refused:
        policy = UriPolicy(allowed_private_hosts=[f"127.0.0.1:{allowed.port}"])
        targets = [refused.url("/x"), refused.url("/x", name="localhost"), "file:///etc/passwd"]
        if HAS_127_2:
            targets.append(f"http://127.0.0.2:{refused.port}/x")
        if HAS_V6:
            targets.append(f"http://[::1]:{refused.port}/x")
        for index, target in enumerate(targets):
            allowed.routes[f"/r{index}"] = (302, {"Location": target})
            with pytest.raises(PermissionDenied, match="redirects to") as denied:
                read_uri(allowed.url(f"/r{index}?sig=secret"), 100, TIMEOUT_S, policy)
            assert "secret" not in denied.value.message
        assert refused.hits == []
        assert len(allowed.hits) == len(targets)


def test_redirects_within_what_is_allowed_are_followed_up_to_the_limit():
    with site() as server:
        policy = UriPolicy(allowed_private_hosts=[f"127.0.0.1:{server.port}"])
        server.routes["/first"] = (301, {"Location": "/second"})
        server.routes["/second"] = (307, {"Location": server.url("/a.flac")})
        assert read_uri(server.url("/first"), 100, TIMEOUT_S, policy) == b"audio"
        assert [path for path, _ in server.hits] == ["/first", "/second", "/a.flac"]
        server.hits.clear()
        server.routes["/loop"] = (302, {"Location": "/loop"})
        with pytest.raises(InvalidAudio, match=f"redirects more than {MAX_REDIRECTS} times"):
            read_uri(server.url("/loop"), 100, TIMEOUT_S, policy)
        assert len(server.hits) == MAX_REDIRECTS + 1


@pytest.mark.skipif(not HAS_127_2, reason="127.0.0.2 cannot be bound here")
def test_the_name_is_resolved_once_and_the_connection_goes_where_it_was_checked():
    with site("127.0.0.1") as first, site("127.0.0.2") as second:
        answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])
        asked = []

        def resolver(host, port, type=0):
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

        # The system cannot resolve a .invalid name: only the policy's resolution is used.
        policy = UriPolicy(allowed_private_hosts=["stt-test.invalid"], resolver=resolver)
        url = f"http://stt-test.invalid:{first.port}/a.flac"
        assert read_uri(url, 100, TIMEOUT_S, policy) == b"audio"
        assert asked == ["stt-test.invalid"]
        assert first.hits == [("/a.flac", f"stt-test.invalid:{first.port}")]
        assert second.hits == []


def test_a_name_that_does_not_resolve_is_a_transient_failure():
    def resolver(host, port, type=0):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    policy = UriPolicy(resolver=resolver)
    with pytest.raises(Transient, match="Temporary failure in name resolution") as failed:
        read_uri("http://stt-test.invalid/a.flac?sig=secret", 100, TIMEOUT_S, policy)
    assert "secret" not in str(failed.value)


@pytest.fixture(scope="module")
def authority():
    return trustme.CA()


def test_https_checks_the_certificate_against_the_uri_name(authority):
    names: list[str | None] = []
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)
    server_tls.sni_callback = lambda sock, name, context: names.append(name)
    client_tls = ssl.create_default_context()
    authority.configure_trust(client_tls)
    with site(tls=server_tls) as server:
        url = f"https://localhost:{server.port}/a.flac"
        policy = UriPolicy(allowed_private_hosts=[f"localhost:{server.port}"])
        assert read_uri(url, 100, TIMEOUT_S, policy, tls=client_tls) == b"audio"
        assert names == ["localhost"]
        assert server.hits == [("/a.flac", f"localhost:{server.port}")]
        by_address = UriPolicy(allowed_private_hosts=[f"127.0.0.1:{server.port}"])
        with pytest.raises(Transient, match="certificate"):  # issued to localhost only
            read_uri(f"https://127.0.0.1:{server.port}/a", 100, TIMEOUT_S, by_address, client_tls)
        with pytest.raises(Transient, match="certificate"):  # an authority not trusted
            read_uri(url, 100, TIMEOUT_S, policy)
        with pytest.raises(PermissionDenied):
            read_uri(url, 100, TIMEOUT_S, UriPolicy(), tls=client_tls)
        assert len(server.hits) == 1


def test_file_roots_when_reading(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "a.wav").write_bytes(b"inside")
    (outside / "b.wav").write_bytes(b"outside")
    (root / "link-out.wav").symlink_to(outside / "b.wav")
    (root / "link-in.wav").symlink_to(root / "a.wav")
    policy = UriPolicy(file_roots=[root])
    assert read_uri((root / "a.wav").as_uri(), 100, TIMEOUT_S, policy) == b"inside"
    assert read_uri((root / "link-in.wav").as_uri(), 100, TIMEOUT_S, policy) == b"inside"
    for uri in (
        (outside / "b.wav").as_uri(),
        (root / "link-out.wav").as_uri(),
        f"file://{root}/../elsewhere/b.wav",
        f"file://{root}/../elsewhere/missing.wav",  # refused before anything is looked at
    ):
        with pytest.raises(PermissionDenied, match="JOBS_URI_FILE_ROOTS"):
            read_uri(uri, 100, TIMEOUT_S, policy)
    with pytest.raises(PermissionDenied, match="none is set"):
        read_uri((root / "a.wav").as_uri(), 100, TIMEOUT_S, UriPolicy())
    os.mkfifo(root / "pipe.wav")
    with pytest.raises(InvalidAudio, match="not a file"):  # and no wait for a writer
        read_uri((root / "pipe.wav").as_uri(), 100, TIMEOUT_S, policy)
