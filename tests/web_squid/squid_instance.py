"""A real Squid (Debian package) on 127.0.0.1 for the integration tests: its own config, logs and pid file
in a temp folder, basic auth by Squid's own basic_fake_auth (any user and password: %un is the user),
every request forwarded to a local origin server (cache_peer originserver, never_direct: no DNS at all),
and civicaup's helper and block page wired in by `civicaup setup squid`."""
from __future__ import annotations

import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SQUID = shutil.which("squid") or ("/usr/sbin/squid" if os.path.exists("/usr/sbin/squid") else None)
FAKE_AUTH = "/usr/lib/squid/basic_fake_auth"
ORIGIN_MARK = "civicaup-test-origin"
PUBLIC_TMP = "/tmp" if os.path.isdir("/tmp") else None  # the Squid user must reach the folders: not a private TMPDIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Origin:
    """A local origin server: answers every request with 200 and a marker, never cached."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = f"{ORIGIN_MARK} host={self.headers.get('Host')} path={self.path}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def runs_as(user: str, argv: list[str]) -> bool:
    """True if *user* can run *argv* (e.g. reach the interpreter)."""
    pw = pwd.getpwnam(user)
    try:
        return subprocess.run(argv, user=pw.pw_uid, group=pw.pw_gid, capture_output=True, timeout=60,
                              cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def helper_launcher(civicaup: str, folder: Path, user: str) -> str | None:
    """A civicaup command the Squid user can run: the venv's own script if the user reaches its interpreter
    and files, else (test plumbing: e.g. a pyenv interpreter under a 0700 home) a small launcher using the
    system Python of the same version with the venv's site-packages, and if need be a copy of the package
    source in *folder*. None if nothing works."""
    if runs_as(user, [civicaup, "--help"]):
        return civicaup
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    purelib = sysconfig.get_paths()["purelib"]
    import civicaup as package

    source = Path(package.__file__).resolve().parent
    copy = folder / "src"
    for interp in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if not os.path.exists(interp):
            continue
        for with_copy in (False, True):
            if with_copy and not copy.exists():
                shutil.copytree(source, copy / "civicaup", ignore=shutil.ignore_patterns("__pycache__"))
            launcher = folder / "civicaup-launcher"
            launcher.write_text(f"#!{os.path.realpath(interp)}\nimport site, sys\nsite.addsitedir({purelib!r})\n"
                                + (f"sys.path.insert(0, {str(copy)!r})\n" if with_copy else "")
                                + "from civicaup.interfaces.cli.app import main\nsys.argv[0] = 'civicaup'\nmain()\n")
            os.chmod(launcher, 0o755)
            if runs_as(user, [str(launcher), "--help"]):
                return str(launcher)
    return None


def squid_user() -> str:
    """The unprivileged user Squid switches to (root is refused): Debian's 'proxy', else 'nobody'."""
    for name in ("proxy", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no 'proxy' or 'nobody' user")


class SquidInstance:
    def __init__(self, civicaup: str, policy: str, home: Path, env: dict[str, str]) -> None:
        assert SQUID is not None
        self.root = Path(tempfile.mkdtemp(prefix="civicaup-squid-", dir=PUBLIC_TMP))
        os.chmod(self.root, 0o755)
        self.civicaup, self.policy, self.env = civicaup, policy, dict(env)
        self.home = home
        self.port = free_port()
        self.origin = Origin()
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def configure(self) -> str:
        setup = subprocess.run([self.civicaup, "setup", "squid", "--policy", self.policy, "--errors-dir",
                                str(self.root / "errors")], capture_output=True, text=True, timeout=120,
                               env={**os.environ, **self.env, "CIVICAUP_HOME": str(self.home)})
        if setup.returncode != 0:
            raise RuntimeError(f"civicaup setup squid failed: {setup.stderr}")
        user = squid_user()
        launcher = helper_launcher(self.civicaup, self.root, user)
        if launcher is None:
            raise RuntimeError(f"the Squid user {user!r} cannot run {self.civicaup} (nor a system Python "
                               f"{sys.version_info.major}.{sys.version_info.minor} with its packages)")
        lines = setup.stdout.replace(str(Path(self.civicaup).resolve()), launcher)
        conf = f"""
http_port 127.0.0.1:{self.port}
visible_hostname civicaup-test
pid_filename {self.root}/squid.pid
cache_effective_user {user}
cache_log stdio:{self.logs}/cache.log
access_log stdio:{self.logs}/access.log squid
logformat civicaup_decisions %ts %un %ru %ea
access_log stdio:{self.logs}/decisions.log civicaup_decisions
cache_store_log none
coredump_dir {self.root}
cache deny all
cache_mem 8 MB
pinger_enable off
netdb_filename none
dns_nameservers 127.0.0.1
shutdown_lifetime 1 seconds
cache_peer 127.0.0.1 parent {self.origin.port} 0 no-query no-digest originserver name=origin
never_direct allow all
auth_param basic program {FAKE_AUTH}
auth_param basic children 2
auth_param basic realm civicaup-test
acl authed proxy_auth REQUIRED
http_access deny !authed
{lines}
http_access allow all
"""
        (self.root / "squid.conf").write_text(conf, encoding="utf-8")
        # Squid and the helper run as an unprivileged user: let it read and write the test's folders
        uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
        for folder in (self.root, self.home):
            for dirpath, dirnames, filenames in os.walk(folder):
                os.chown(dirpath, uid, gid)
                for name in filenames:
                    os.chown(os.path.join(dirpath, name), uid, gid)
        return conf

    def start(self, timeout: float = 60) -> None:
        self.configure()
        check = subprocess.run([SQUID, "-k", "parse", "-f", str(self.root / "squid.conf")], capture_output=True,
                               text=True, timeout=60)
        if check.returncode != 0:
            raise RuntimeError(f"squid -k parse failed:\n{check.stderr[-3000:]}")
        env = {**os.environ, **self.env, "CIVICAUP_HOME": str(self.home)}
        self.proc = subprocess.Popen([SQUID, "-N", "-f", str(self.root / "squid.conf")], env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.logs / "squid.stderr", "wb"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"squid exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                status, _ = self.raw("GET http://warm-up.example/ HTTP/1.1", "alice")
                if status:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"squid did not start within {timeout:.0f} s:\n{self.tail()}")

    def raw(self, request_line: str | bytes, user: str | None, host: str | None = None,
            timeout: float = 30) -> tuple[int, str]:
        """Send one request with an exact request line; (status, body)."""
        line = request_line.encode("utf-8") if isinstance(request_line, str) else request_line
        head = [line]
        if host:
            head.append(b"Host: " + host.encode("utf-8"))
        if user is not None:
            head.append(b"Proxy-Authorization: Basic " + base64.b64encode(f"{user}:secret".encode()))
        head.append(b"Connection: close")
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            chunks = []
            while True:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    break
                if not data:
                    break
                chunks.append(data)
        resp = b"".join(chunks).decode("utf-8", "replace")
        status_line = resp.split("\r\n", 1)[0]
        parts = status_line.split(" ")
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return status, resp.split("\r\n\r\n", 1)[-1]

    def tail(self, n: int = 40) -> str:
        out = []
        for name in ("squid.stderr", "cache.log"):
            p = self.logs / name
            if p.exists():
                out.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-n:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop Squid by its process id (SIGTERM, then SIGKILL), then the origin; the folder is removed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.origin.stop()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
