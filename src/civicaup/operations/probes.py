"""Is the mail server and the web proxy wired to civicaup, and does each part answer? Read-only checks for
``civicaup doctor``: they read Postfix's and Squid's configuration and open short loopback connections, and
never change anything.

* Postfix (when ``mail.postfix_config_dir`` holds a main.cf): ``postconf`` says whether ``smtpd_milters`` /
  ``non_smtpd_milters`` (main.cf or a master.cf ``-o`` override) name civicaup's milter, or ``content_filter``
  names the relay; the milter then must answer a milter option negotiation, the relay an SMTP banner; every
  ``smtpd`` inet service of master.cf must greet with ``220`` (the re-injection listener included).
* Squid (when ``web.squid_config`` exists): an ``external_acl_type`` line runs ``squid-helper`` from a
  program that exists, and each ``http_port`` answers.
"""
from __future__ import annotations

import re
import shlex
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

from civicaup.settings import Settings

Report = Callable[[str, str, str], None]
"""report(status, name, message): status is ok, warn or fail."""
TIMEOUT = 3.0
_INET = re.compile(r"inet:\[?([^\]\s,{}]+?)\]?:(\d+)")


def _loopbackish(host: str) -> set[str]:
    return {"127.0.0.1", "localhost", "::1"} if host in ("127.0.0.1", "localhost", "::1", "") else {host}


def names_milter(value: str, listen: str) -> bool:
    """Whether a Postfix milter list mentions civicaup's milter at *listen* (HOST:PORT or unix:PATH)."""
    if listen.startswith("unix:"):
        path = listen[5:]
        found = re.findall(r"unix:([^\s,{}]+)", value)
        return any(path == p or path.endswith("/" + p.lstrip("/")) for p in found)
    host, _, port = listen.removeprefix("inet:").rpartition(":")
    host = host.strip("[]")
    return any(p == port and h in _loopbackish(host) for h, p in _INET.findall(value))


def names_relay(value: str, listen: str) -> bool:
    """Whether a content_filter value (``transport:[host]:port``) sends mail to the relay at *listen*."""
    host, _, port = listen.rpartition(":")
    for h, p in re.findall(r"\[?([A-Za-z0-9.:-]+?)\]?:(\d+)\s*$", value.strip()):
        if p == port and h.split(":")[-1] in _loopbackish(host):
            return True
    return False


def _connect(address: str) -> socket.socket:
    """A connected socket to HOST:PORT or unix:PATH (raises OSError)."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(address[5:])
        except OSError:
            sock.close()
            raise
        return sock
    host, _, port = address.removeprefix("inet:").rpartition(":")
    return socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=TIMEOUT)


def _why(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    return exc.strerror or str(exc) or type(exc).__name__


def milter_answers(address: str) -> str:
    """'' when a milter at *address* answers an option negotiation, else why not."""
    from civicaup.channels.mail import milter_protocol as mp
    try:
        with _connect(address) as sock:
            sock.sendall(mp.encode(mp.OPTNEG, struct.pack(">III", mp.VERSION, 0x1FF, 0x1FFFFF)))
            head = _exactly(sock, 4)
            body = _exactly(sock, min(struct.unpack(">I", head)[0], 4096))
            sock.sendall(mp.encode(mp.QUIT))
        return "" if body[:1] == mp.R_OPTNEG else f"answered {body[:1]!r}, not a milter negotiation"
    except OSError as exc:
        return _why(exc)


def _exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(0, "closed the connection")
        out += chunk
    return out


def smtp_banner(address: str) -> tuple[str, str]:
    """(banner, '') when an SMTP server at HOST:PORT greets, else ('', why)."""
    try:
        with _connect(address) as sock:
            line = sock.makefile("rb").readline(512).decode("ascii", "replace").strip()
            try:
                sock.sendall(b"QUIT\r\n")
            except OSError:
                pass
    except OSError as exc:
        return "", _why(exc)
    return (line, "") if line.startswith("220") else ("", f"greeted {line[:60]!r}, not 220")


def tcp_answers(address: str) -> str:
    try:
        with _connect(address):
            return ""
    except OSError as exc:
        return _why(exc)


# ---------------------------------------------------------------- Postfix

def _postconf(config_dir: Path, *args: str) -> tuple[str, str]:
    """(output, error) of ``postconf -c DIR ARGS``."""
    postconf = shutil.which("postconf") or ("/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None)
    if postconf is None:
        return "", "postconf is not installed"
    try:
        r = subprocess.run([postconf, "-c", str(config_dir), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return "", str(exc)
    if r.returncode != 0:
        return "", (r.stderr.strip().splitlines() or ["postconf failed"])[-1]
    return r.stdout, ""


def smtpd_services(master: str) -> list[str]:
    """HOST:PORT of every inet smtpd service in ``postconf -M`` output (a bare port or name means 127.0.0.1)."""
    out = []
    for line in master.splitlines():
        f = line.split()
        if len(f) < 8 or f[1] != "inet" or f[7] != "smtpd":
            continue
        host, sep, port = f[0].rpartition(":")
        if not port.isdigit():
            try:
                port = str(socket.getservbyname(port, "tcp"))
            except OSError:
                continue
        out.append(f"{host.strip('[]') if sep and host else '127.0.0.1'}:{port}")
    return out


def postfix(cfg: Settings, report: Report) -> None:
    config_dir = cfg.mail.postfix_config_dir.expanduser()
    if not (config_dir / "main.cf").is_file():
        report("ok", "postfix", f"no Postfix configuration in {config_dir} (mail.postfix_config_dir): "
                                "mail checks skipped on this host")
        return
    main, err = _postconf(config_dir, "-h", "smtpd_milters", "non_smtpd_milters", "content_filter")
    if err:
        report("fail", "postfix", f"cannot read {config_dir} with postconf: {err}; fix main.cf "
                                  f"(postfix -c {config_dir} check)")
        return
    overrides, _ = _postconf(config_dir, "-P")
    milters = " ".join(main.splitlines()[:2]) + " " + " ".join(
        line.partition("=")[2] for line in overrides.splitlines() if "/smtpd_milters" in line.partition("=")[0]
        or "/non_smtpd_milters" in line.partition("=")[0])
    filters = [main.splitlines()[2] if len(main.splitlines()) > 2 else ""] + [
        line.partition("=")[2] for line in overrides.splitlines() if "/content_filter" in line.partition("=")[0]]
    uses_milter = names_milter(milters, cfg.listen.milter)
    uses_relay = any(names_relay(v, cfg.listen.relay) for v in filters if v.strip())
    if not uses_milter and not uses_relay:
        report("warn", "postfix", f"Postfix ({config_dir}) passes no mail to civicaup: neither smtpd_milters names "
                                  f"the milter ({cfg.listen.milter}) nor content_filter the relay "
                                  f"({cfg.listen.relay}); wire it in ('civicaup setup postfix')")
        return  # not civicaup's mail server: its listeners are not ours to check
    else:
        report("ok", "postfix", f"Postfix ({config_dir}) sends mail to civicaup's "
                                + " and ".join(w for w, on in (("milter", uses_milter), ("relay", uses_relay)) if on))
    if uses_milter:
        why = milter_answers(cfg.listen.milter)
        report("fail" if why else "ok", "milter",
               f"the milter on {cfg.listen.milter} does not answer ({why}): Postfix answers 4xx meanwhile; "
               "start it (civicaup milter, or its service unit)" if why else
               f"the milter on {cfg.listen.milter} answers the milter protocol")
    if uses_relay:
        _, why = smtp_banner(cfg.listen.relay)
        report("fail" if why else "ok", "relay",
               f"the relay on {cfg.listen.relay} does not answer ({why}): mail waits in Postfix's queue; start it "
               "(civicaup relay, or its service unit)" if why else f"the relay on {cfg.listen.relay} answers SMTP")
    master, err = _postconf(config_dir, "-M")
    for address in smtpd_services(master) if not err else []:
        banner, why = smtp_banner(address)
        report("fail" if why else "ok", "smtp",
               f"Postfix does not answer on {address} ({why}): is it running? (postfix -c {config_dir} status)"
               if why else f"{address} greets: {banner[:60]}")


# ---------------------------------------------------------------- Squid

def squid_lines(text: str) -> list[list[str]]:
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            try:
                out.append(shlex.split(line))
            except ValueError:
                out.append(line.split())
    return out


def http_ports(lines: list[list[str]]) -> list[str]:
    out = []
    for words in lines:
        if words[0] in ("http_port", "https_port") and len(words) > 1:
            host, sep, port = words[1].rpartition(":")
            if port.isdigit():
                out.append(f"{host.strip('[]') if sep and host else '127.0.0.1'}:{port}")
    return out


def squid(cfg: Settings, report: Report) -> None:
    conf = cfg.web.squid_config.expanduser()
    if not conf.is_file():
        report("ok", "squid", f"no squid.conf at {conf} (web.squid_config): web proxy checks skipped on this host")
        return
    try:
        lines = squid_lines(conf.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        report("fail", "squid", f"cannot read {conf}: {exc.strerror or exc}; let civicaup's user read it")
        return
    helpers = [w for w in lines if w[0] == "external_acl_type" and "squid-helper" in w]
    if not helpers:
        report("warn", "squid", f"{conf} runs no civicaup squid-helper: Squid does not ask civicaup about URLs; "
                                "add the lines 'civicaup setup squid --policy POLICY' prints")
        return  # not civicaup's proxy: its ports are not ours to check
    for words in helpers:
        i = words.index("squid-helper")
        program = words[i - 1] if i > 0 else ""
        home = next((w.split("=", 1)[1] for w in words if w.startswith("CIVICAUP_HOME=")), "")
        if not program or not Path(program).is_file():
            report("fail", "squid-helper", f"{conf}: the helper program {program or '(none)'} does not exist; "
                                           "rerun 'civicaup setup squid' and paste its lines")
        elif home and Path(home).expanduser().resolve() != cfg.home.resolve():
            report("warn", "squid-helper", f"{conf}: the helper uses CIVICAUP_HOME={home}, this install's data_dir "
                                           f"is {cfg.home}; it decides with another store and index")
        else:
            report("ok", "squid-helper", f"{conf} runs {program} squid-helper"
                                         + (f" --policy {words[i + 2]}" if len(words) > i + 2 else ""))
    for address in http_ports(lines):
        why = tcp_answers(address)
        report("fail" if why else "ok", "squid",
               f"Squid does not answer on {address} ({why}): is it running? (systemctl status squid)" if why
               else f"Squid answers on {address}")
