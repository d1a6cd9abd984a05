"""The Postfix side of the mail channel: the main.cf and master.cf lines that put civicaup in the mail path, as data,
and the careful edit that writes them (`civicaup setup postfix`).

Two ways in, both from the configuration (``listen.milter``, ``listen.relay``, ``mail.next_hop``,
``mail.milter_timeout_s``, ``mail.max_message_mb``):

* **milter** (before the queue): ``smtpd_milters`` / ``non_smtpd_milters`` name civicaup's milter ahead of any milter
  the city already runs, ``milter_default_action = tempfail`` (a milter that is down or slow makes Postfix answer
  4xx: mail is never accepted and then dropped), ``milter_protocol = 6``, the timeouts; in master.cf a re-injection
  smtpd on ``mail.next_hop`` without civicaup's milter, where released mail goes back in (address mappings are done
  there, since the milter saw the recipients as the client wrote them).
* **content filter** (after the queue, Postfix's FILTER_README "advanced" layout): ``content_filter`` sends queued
  mail through a dedicated ``civicaup`` smtp transport to the relay on ``listen.relay``; address mappings are switched
  off before the filter (``receive_override_options = no_address_mappings``) and done at the re-injection smtpd on
  ``mail.next_hop``, which runs no filter, no milter, no header/body checks again.

``message_size_limit`` is raised to at least ``mail.max_message_mb`` (never lowered: a limit below what the pack
checks would refuse large mail with Postfix's generic 552 instead of the clause), and ``mailbox_size_limit`` /
``virtual_mailbox_limit`` with it where they would fall below it (Postfix's delivery agents refuse to start then).

A setting civicaup defines that the city's file already sets is commented out as replaced (see
:mod:`civicaup.channels.conffile`), so each key is set once; when ``postconf`` is installed, the new files are read
back with it before they replace the old ones.
"""
from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from civicaup.channels import conffile
from civicaup.channels.conffile import Entry, Key
from civicaup.errors import InputError
from civicaup.settings import Settings

MODES = ("milter", "content-filter")
TRANSPORT = "civicaup"  # master.cf service of the content-filter transport
FILTER_PROCESSES = 10  # concurrent deliveries to the relay
CONNECT_TIMEOUT_MAX = 10  # seconds: a milter that does not answer a connect is down; say 4xx soon
MIB = 1024 * 1024
# Postfix's own defaults, used when postconf is not installed to ask
DEFAULTS = {"message_size_limit": "10240000", "mailbox_size_limit": "51200000",
            "virtual_mailbox_limit": "51200000", "queue_directory": "/var/spool/postfix",
            "smtpd_milters": "", "non_smtpd_milters": "", "content_filter": "", "mynetworks": ""}
_PARAM = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class PostfixWiring:
    """What `setup postfix` writes: both blocks (marker lines included) and what Postfix must read back."""
    policy: str
    mode: str
    config_dir: Path
    main_block: list[str]
    master_block: list[str]
    expect: dict[str, str]  # main.cf parameter -> value postconf must report
    services: list[tuple[str, str]]  # master.cf (service, type) that must exist
    run: str  # the civicaup command that has to run beside Postfix
    notes: list[str] = field(default_factory=list)


# -- reading the city's files ------------------------------------------------------------------------------------


def main_key(text: str) -> Key | None:
    name, sep, _ = text.partition("=")
    name = name.strip()
    return ("param", name) if sep and _PARAM.fullmatch(name) else None


def master_key(text: str) -> Key | None:
    fields = text.split()
    return ("service", fields[0], fields[1]) if len(fields) >= 8 else None


def main_values(text: str, where: str) -> dict[str, str]:
    """Parameter -> value as the city's main.cf sets it (before civicaup; the last definition wins, as in Postfix)."""
    out: dict[str, str] = {}
    for e in conffile.current_entries(text, where, conffile.postfix_entries, main_key):
        if e.key is not None:
            out[e.key[1]] = e.text.partition("=")[2].strip()
    return out


def master_services(text: str, where: str) -> list[Entry]:
    return [e for e in conffile.current_entries(text, where, conffile.postfix_entries, master_key)
            if e.key is not None]


def postfix_default(name: str) -> str:
    """Postfix's built-in default of a parameter (``postconf -d``), else the value known for Postfix 3.x."""
    postconf = shutil.which("postconf") or ("/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None)
    if postconf:
        try:
            r = subprocess.run([postconf, "-d", "-h", name], capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and r.stdout:
                return r.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return DEFAULTS.get(name, "")


def milter_list(value: str) -> list[str]:
    """A milter list split on commas and white space, keeping ``{ inet:host:port, default_action=accept }`` whole."""
    items, depth, cur = [], 0, ""
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        if depth == 0 and (ch == "," or ch.isspace()):
            if cur.strip():
                items.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def _milter_target(item: str) -> str:
    """The address of one milter list item (``inet:...`` or the first word inside ``{ }``)."""
    inner = item.strip("{} \t")
    return milter_list(inner.replace(",", " "))[0] if inner else ""


# -- addresses -----------------------------------------------------------------------------------------------------


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.removeprefix("inet:").rpartition(":")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]"


def _service_name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _chroot(entries: Sequence[Entry]) -> set[bool]:
    """Whether the smtpd and cleanup services run chrooted (a set: both answers means mixed)."""
    out = set()
    for e in entries:
        f = e.text.split()
        if f[7] in ("smtpd", "cleanup"):
            out.add(f[4] == "y")
    return out


def milter_address(listen: str, chroot: set[bool], queue_dir: str) -> str:
    """The Postfix address of civicaup's milter: ``inet:HOST:PORT``, or ``unix:PATH`` as smtpd/cleanup see it (inside
    their chroot, the queue directory, when master.cf runs them chrooted)."""
    if not listen.startswith("unix:"):
        host, port = host_port(listen)
        return f"inet:{_bracket(host) if ':' in host else host}:{port}"
    path = listen[5:]
    if chroot == {True, False}:
        raise InputError("master.cf runs some smtpd/cleanup services chrooted and some not: no one unix socket path "
                         "works for both; set listen.milter = 127.0.0.1:PORT")
    if chroot == {True}:
        root = queue_dir.rstrip("/")
        if not path.startswith(root + "/"):
            raise InputError(f"smtpd runs chrooted in {root} (master.cf): put the milter socket under it, e.g. "
                             f"listen.milter = unix:{root}/civicaup/milter.sock")
        return "unix:" + path[len(root):]
    return f"unix:{path}"


# -- the blocks ----------------------------------------------------------------------------------------------------


def _begin(what: str, policy: str, mode: str) -> str:
    return (f"{conffile.BEGIN} ({what}, civicaup setup postfix --policy {policy} --mode {mode}): rewritten by "
            f"each run; settings it replaces stay below as '{conffile.REPLACED.strip()}' lines")


def _size(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name) or postfix_default(name)
    return int(raw) if raw.isdigit() else None


def _inet_ports(services: Sequence[Entry]) -> list[tuple[str, str]]:
    """(service name, port) of every inet service of master.cf."""
    return [(e.key[1], e.key[1].rpartition(":")[2]) for e in services if e.key and e.key[2] == "inet"]


def _restrictions(hop_host: str) -> list[str]:
    """The re-injection smtpd takes mail only from the filter's side (loopback), whatever the city's restrictions."""
    out = ["-o smtpd_helo_restrictions=", "-o smtpd_client_restrictions=", "-o smtpd_sender_restrictions=",
           "-o smtpd_relay_restrictions=", "-o smtpd_recipient_restrictions=permit_mynetworks,reject"]
    if _is_loopback(hop_host):
        out.append(f"-o mynetworks={'[::1]/128' if ':' in hop_host else '127.0.0.0/8'}")
    return out


def _milter_mode(cfg: Settings, values: dict[str, str], services: Sequence[Entry], hop_service: str,
                 restrictions: list[str]) -> tuple[dict[str, str], list[str]]:
    queue_dir = values.get("queue_directory") or postfix_default("queue_directory")
    address = milter_address(cfg.listen.milter, _chroot(services), queue_dir)
    others = [m for m in milter_list(values.get("smtpd_milters", "")) if _milter_target(m) != address]
    non_smtpd = [m for m in milter_list(values.get("non_smtpd_milters", "")) if _milter_target(m) != address]
    main = {"smtpd_milters": ", ".join([address, *others])}
    if any("smtpd_milters" in m for m in non_smtpd):  # "$smtpd_milters": civicaup comes with it
        main["non_smtpd_milters"] = ", ".join(non_smtpd)
    else:
        main["non_smtpd_milters"] = ", ".join([address, *non_smtpd])
    timeout = cfg.mail.milter_timeout_s
    main.update({"milter_default_action": "tempfail", "milter_protocol": "6",
                 "milter_connect_timeout": f"{min(timeout, CONNECT_TIMEOUT_MAX)}s",
                 "milter_command_timeout": f"{timeout}s", "milter_content_timeout": f"{timeout}s"})
    keep = f"-o {{ smtpd_milters = {', '.join(others)} }}" if others else "-o smtpd_milters="
    master = ["# re-injection listener (mail.next_hop): released mail comes back in here, without civicaup's milter;",
              "# address mappings apply here (the milter saw the recipients as the client wrote them)",
              f"{hop_service} inet n - n - - smtpd", f"  {keep}", *(f"  {r}" for r in restrictions)]
    return main, master


def _filter_mode(cfg: Settings, values: dict[str, str], services: Sequence[Entry], hop_service: str,
                 restrictions: list[str], where: tuple[str, str]) -> tuple[dict[str, str], list[str]]:
    relay_host, relay_port = host_port(cfg.listen.relay)
    if host_port(cfg.listen.relay) == host_port(cfg.mail.next_hop):
        raise InputError(f"listen.relay and mail.next_hop are both {cfg.listen.relay}: the relay would send mail "
                         "back to itself")
    for name, port in _inet_ports(services):
        if port == str(relay_port):
            raise InputError(f"{where[1]}: service {name} already listens on port {relay_port}, where the relay "
                             f"must listen (listen.relay = {cfg.listen.relay})")
    ours = f"{TRANSPORT}:{_bracket(relay_host)}:{relay_port}"
    existing = values.get("content_filter", "")
    if existing and existing != ours:
        raise InputError(f"{where[0]} already sends mail through content_filter = {existing}; civicaup would "
                         "replace it: chain that filter to the relay yourself, or use --mode milter")
    main = {"content_filter": ours, "receive_override_options": "no_address_mappings"}
    transport = [f"{TRANSPORT} unix - - n - {FILTER_PROCESSES} smtp", "  -o disable_mime_output_conversion=yes",
                 "  -o smtp_generic_maps="]
    if _is_loopback(relay_host):
        transport.append("  -o smtp_tls_security_level=none")
    hop_host = host_port(cfg.mail.next_hop)[0]
    master = ["# the content-filter transport: queued mail goes to the relay (listen.relay)", *transport,
              "# re-injection listener (mail.next_hop): mail the relay passed or that is released comes back in here;",
              "# no filter, no milter, no header/body checks again; address mappings apply here",
              f"{hop_service} inet n - n - - smtpd", "  -o content_filter=",
              "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters",
              *(f"  {r}" for r in restrictions)]
    if _is_loopback(hop_host):
        master.append(f"  -o smtpd_authorized_xforward_hosts={'[::1]/128' if ':' in hop_host else '127.0.0.0/8'}")
    return main, master


def wiring(cfg: Settings, policy: str, mode: str, config_dir: Path, main_text: str = "",
           master_text: str = "") -> PostfixWiring:
    """The blocks for *mode* from the configuration, building on the city's current main.cf / master.cf text."""
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: choose milter or content-filter")
    where = (str(config_dir / "main.cf"), str(config_dir / "master.cf"))
    values = main_values(main_text, where[0])
    services = master_services(master_text, where[1])
    hop_host, hop_port = host_port(cfg.mail.next_hop)
    hop_service = _service_name(hop_host, hop_port)
    for name, port in _inet_ports(services):
        if port == str(hop_port) and name != hop_service:
            raise InputError(f"{where[1]}: service {name} already listens on port {hop_port}; choose another "
                             "mail.next_hop (the re-injection listener civicaup adds)")
    restrictions = _restrictions(hop_host)
    if mode == "milter":
        main, master = _milter_mode(cfg, values, services, hop_service, restrictions)
        run = f"civicaup milter --policy {policy} --listen {cfg.listen.milter} --next-hop {cfg.mail.next_hop}"
        svc = [(hop_service, "inet")]
    else:
        main, master = _filter_mode(cfg, values, services, hop_service, restrictions, where)
        run = f"civicaup relay --policy {policy} --listen {cfg.listen.relay} --next-hop {cfg.mail.next_hop}"
        svc = [(TRANSPORT, "unix"), (hop_service, "inet")]

    limit = max(_size(values, "message_size_limit") or 0, cfg.mail.max_message_mb * MIB)
    main["message_size_limit"] = str(limit)
    notes = []
    for name in ("mailbox_size_limit", "virtual_mailbox_limit"):
        current = _size(values, name)
        if current and current < limit:
            main[name] = str(limit)
            notes.append(f"{name} raised to {limit} (Postfix needs it at least message_size_limit)")
    main_block = [_begin("main.cf", policy, mode), f"# runs beside Postfix: {run}",
                  *(f"{k} = {v}" for k, v in main.items()), conffile.END]
    master_block = [_begin("master.cf", policy, mode), *master, conffile.END]
    return PostfixWiring(policy, mode, config_dir, main_block, master_block, main, svc, run, notes)


def render(w: PostfixWiring) -> str:
    """What `setup postfix` prints: both blocks, each under the file it goes into."""
    return "\n".join([f"# ---- {w.config_dir / 'main.cf'}", *w.main_block, "",
                      f"# ---- {w.config_dir / 'master.cf'}", *w.master_block, ""])


def new_texts(w: PostfixWiring, main_text: str, master_text: str) -> tuple[str, str]:
    """main.cf and master.cf with the blocks in (replacing the old ones) and the settings they replace commented."""
    main = conffile.apply_block(main_text, w.main_block, where=str(w.config_dir / "main.cf"),
                                entries=conffile.postfix_entries, key_of=main_key,
                                place=lambda lines, found: len(lines))
    master = conffile.apply_block(master_text, w.master_block, where=str(w.config_dir / "master.cf"),
                                  entries=conffile.postfix_entries, key_of=master_key,
                                  place=lambda lines, found: len(lines))
    return main, master


def check_with_postconf(w: PostfixWiring, main: str, master: str) -> None:
    """Read the new files back with Postfix's own postconf (when installed): every value and service as intended."""
    postconf = shutil.which("postconf") or ("/usr/sbin/postconf" if Path("/usr/sbin/postconf").exists() else None)
    if not postconf:
        return
    with tempfile.TemporaryDirectory(prefix="civicaup-postconf-") as tmp:
        (Path(tmp) / "main.cf").write_bytes(main.encode("utf-8", "surrogateescape"))
        (Path(tmp) / "master.cf").write_bytes(master.encode("utf-8", "surrogateescape"))
        names = list(w.expect)
        r = subprocess.run([postconf, "-c", tmp, "-h", *names], capture_output=True, text=True, timeout=60)
        got = r.stdout.splitlines()
        if r.returncode != 0 or len(got) != len(names):
            why = ((r.stderr.strip() or r.stdout.strip()).splitlines() or [f"exit {r.returncode}"])[0]
            raise InputError(f"postconf cannot read the new main.cf ({why}); nothing written")
        for name, value in zip(names, got):
            if " ".join(value.split()) != " ".join(w.expect[name].split()):
                raise InputError(f"postconf reads {name} = {value!r} from the new main.cf, not {w.expect[name]!r}; "
                                 "nothing written")
        for name, kind in w.services:
            r = subprocess.run([postconf, "-c", tmp, "-M", f"{name}/{kind}"], capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0 or not r.stdout.strip():
                raise InputError(f"postconf does not find the {name}/{kind} service in the new master.cf; "
                                 "nothing written")


def read_config(config_dir: Path, *, required: bool) -> tuple[str, str]:
    """The current main.cf and master.cf text ('' for a file that is missing, unless *required*)."""
    out = []
    for name in ("main.cf", "master.cf"):
        path = config_dir / name
        if not path.exists() and not required:
            out.append("")
            continue
        out.append(conffile.read_text(path))
    return out[0], out[1]


def apply(w: PostfixWiring, *, check: bool = True) -> list[tuple[Path, Path | None]]:
    """Write both files (master.cf first: a new service nobody uses yet is harmless). Each is backed up beside itself
    and replaced atomically; a file that would not change is not touched. Returns (file, backup or None)."""
    main_text, master_text = read_config(w.config_dir, required=True)
    main, master = new_texts(w, main_text, master_text)
    if check:
        check_with_postconf(w, main, master)
    done = []
    for name, text in (("master.cf", master), ("main.cf", main)):
        path = w.config_dir / name
        done.append((path, conffile.write_with_backup(path, text)))
    return done
