"""The directory from LDAP / Active Directory, against a real slapd (Debian's package) on a free local port.

AD's own attributes (userAccountControl, department) are declared in a tiny test schema with AD's OIDs, so the
disabled-account rule is exercised through a real server, not a mock."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.policy.registry import get_pack
from civicaup.stores import audit
from civicaup.stores.db import open_store
from civicaup.stores.directory import find_person, list_people
from civicaup.stores.ldap_directory import LdapImportReport, fetch_people, import_ldap

ldap3 = pytest.importorskip("ldap3")

KY = get_pack("ky-36-082")
SUFFIX = "dc=kycity,dc=gov"
ROOTDN = f"cn=admin,{SUFFIX}"
PW_ENV = "CIVICAUP_TEST_LDAP_PW"

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 2.25.281857617218836389837946423437419386215 NAME 'civicaupTestAdAccount' AUXILIARY
  MAY ( userAccountControl $ department ) )
"""

BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: kycity
o: Kentucky City

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=churn,{SUFFIX}
objectClass: organizationalUnit
ou: churn

dn: uid=amayor,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: civicaupTestAdAccount
uid: amayor
cn: Mayor, Ann
sn: Mayor
displayName: Ann Mayor
mail: A.Mayor@kycity.gov
title: Mayor
ou: Administration
userAccountControl: 512

dn: uid=pchief,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: civicaupTestAdAccount
uid: pchief
cn: Pat Chief
sn: Chief
mail: pc@kycity.gov
title: Police Chief
ou: Sworn Staff
department: Police
userAccountControl: 66048

dn: uid=dclerk,ou=people,{SUFFIX}
objectClass: inetOrgPerson
objectClass: civicaupTestAdAccount
uid: dclerk
cn: Dee Clerk
sn: Clerk
mail: dclerk@kycity.gov
title: City Clerk
ou: Administration
userAccountControl: 514

dn: uid=svc-backup,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: svc-backup
cn: svc-backup
sn: svc-backup
title: Service account
"""


@dataclass(frozen=True)
class Slapd:
    url: str
    password: str
    pid: int


def _slapd_bin() -> str | None:
    return shutil.which("slapd") or next((p for p in ("/usr/sbin/slapd", "/usr/local/sbin/slapd")
                                          if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """slapd in the foreground (mdb backend, suffix dc=kycity,dc=gov, a throwaway root password), loaded once."""
    exe, ldapadd = _slapd_bin(), shutil.which("ldapadd")
    if not exe or not ldapadd:
        pytest.skip("slapd / ldapadd not installed (apt-get install slapd ldap-utils)")
    modules = next((d for d in ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/libexec/openldap")
                    if Path(d, "back_mdb.so").exists()), None)
    base = Path(tempfile.mkdtemp(prefix="civicaup-slapd-"))
    password = secrets.token_urlsafe(18)
    (base / "data").mkdir()
    (base / "ad.schema").write_text(AD_SCHEMA)
    (base / "slapd.conf").write_text("\n".join([
        "include /etc/ldap/schema/core.schema",
        "include /etc/ldap/schema/cosine.schema",
        "include /etc/ldap/schema/inetorgperson.schema",
        f"include {base / 'ad.schema'}",
        f"pidfile {base / 'slapd.pid'}",
        f"argsfile {base / 'slapd.args'}",
        *([f"modulepath {modules}", "moduleload back_mdb"] if modules else []),
        "database mdb",
        "maxsize 16777216",
        f'suffix "{SUFFIX}"',
        f'rootdn "{ROOTDN}"',
        f"rootpw {password}",
        f"directory {base / 'data'}",
        "",
    ]))
    pwfile = base / "root.pw"
    pwfile.write_text(password)  # ldapadd -y: the whole file is the password (no newline)
    pwfile.chmod(0o600)
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    log = open(base / "slapd.log", "wb")
    proc = subprocess.Popen([exe, "-h", f"{url}/", "-f", str(base / "slapd.conf"), "-d", "0"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ldap3.Connection(ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=1), auto_bind=True).unbind()
                break
            except ldap3.core.exceptions.LDAPException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("slapd did not start: " + (base / "slapd.log").read_text(errors="replace")[-800:])
                time.sleep(0.1)
        r = subprocess.run([ldapadd, "-x", "-H", url, "-D", ROOTDN, "-y", str(pwfile)], input=BASE_LDIF,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        yield Slapd(url=url, password=password, pid=proc.pid)
    finally:
        proc.terminate()  # SIGTERM to slapd's own PID: clean shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def admin(slapd: Slapd) -> Iterator[object]:
    """A root connection to change the directory during a test."""
    conn = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), ROOTDN, slapd.password, auto_bind=True)
    yield conn
    conn.unbind()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slapd: Slapd) -> Engine:
    monkeypatch.setenv("CIVICAUP_HOME", str(tmp_path))
    monkeypatch.delenv("CIVICAUP_DB_URL", raising=False)
    monkeypatch.setenv(PW_ENV, slapd.password)
    return open_store(f"sqlite:///{tmp_path / 'store.db'}")


def _import(slapd: Slapd, store: Engine, base_dn: str, **kw: Any) -> LdapImportReport:
    return import_ldap(store, KY, slapd.url, base_dn, bind_dn=ROOTDN, password_env=PW_ENV, **kw)


def test_fetch_maps_ad_and_inetorgperson_attributes(slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, slapd.password)
    rows = {r["email"]: r for r in fetch_people(slapd.url, f"ou=people,{SUFFIX}", bind_dn=ROOTDN,
                                                password_env=PW_ENV)}
    assert set(rows) == {"A.Mayor@kycity.gov", "pc@kycity.gov", "dclerk@kycity.gov", ""}
    mayor, chief = rows["A.Mayor@kycity.gov"], rows["pc@kycity.gov"]
    assert (mayor["name"], mayor["department"], mayor["title"]) == ("Ann Mayor", "Administration", "Mayor")
    assert (chief["name"], chief["department"]) == ("Pat Chief", "Police")  # cn without displayName; department > ou
    assert rows["dclerk@kycity.gov"]["disabled"] and not mayor["disabled"] and not chief["disabled"]
    assert rows["dclerk@kycity.gov"]["dn"] == f"uid=dclerk,ou=people,{SUFFIX}"
    custom = fetch_people(slapd.url, f"ou=people,{SUFFIX}", bind_dn=ROOTDN, password_env=PW_ENV,
                          filter="(uid=amayor)", attrs={"department": "departmentNumber", "name": ["sn"]})
    assert [(r["name"], r["department"]) for r in custom] == [("Mayor", "")]


def test_titles_map_to_roles_disabled_and_mailless_accounts_are_skipped(slapd: Slapd, store: Engine) -> None:
    report = _import(slapd, store, SUFFIX)
    assert (report.imported, report.disabled, report.without_mail) == (2, 1, 1)
    mayor = find_person(store, "ky-36-082", "a.mayor@kycity.gov")
    assert mayor and {"mayor", "elected-official", "employee"} <= set(mayor.roles)
    assert mayor.department == "Administration" and mayor.name == "Ann Mayor"
    assert [p.email for p in list_people(store, "ky-36-082", role="police-chief")] == ["pc@kycity.gov"]
    assert find_person(store, "ky-36-082", "dclerk@kycity.gov") is None


def test_reimport_updates_and_leavers_lose_access(slapd: Slapd, store: Engine, admin: ldap3.Connection) -> None:
    churn = f"ou=churn,{SUFFIX}"
    for uid, title in (("officer", "Police Officer"), ("gone", "Street Supervisor"), ("quits", "City Clerk")):
        assert admin.add(f"uid={uid},{churn}", ["inetOrgPerson", "civicaupTestAdAccount"],
                         {"uid": uid, "cn": uid.title(), "sn": uid, "mail": f"{uid}@kycity.gov", "title": title,
                          "ou": "Streets", "userAccountControl": 512}), admin.result
    try:
        assert _import(slapd, store, churn).imported == 3
        officer = find_person(store, "ky-36-082", "officer@kycity.gov")
        assert officer and "law-enforcement" in officer.roles

        assert admin.modify(f"uid=officer,{churn}", {"title": [(ldap3.MODIFY_REPLACE, ["Police Sergeant"])],
                                                      "ou": [(ldap3.MODIFY_REPLACE, ["Police"])]}), admin.result
        assert admin.delete(f"uid=gone,{churn}"), admin.result
        assert admin.modify(f"uid=quits,{churn}", {"userAccountControl": [(ldap3.MODIFY_REPLACE, [514])]})

        without = _import(slapd, store, churn)  # without --leavers nobody loses access
        assert (without.imported, without.deactivated, without.disabled) == (1, 0, 1)
        officer = find_person(store, "ky-36-082", "officer@kycity.gov")
        assert officer and officer.title == "Police Sergeant" and officer.department == "Police"
        assert "supervisor" in officer.roles
        assert find_person(store, "ky-36-082", "gone@kycity.gov").active  # type: ignore[union-attr]

        report = _import(slapd, store, churn, leavers=True)
        assert report.deactivated == 2
        assert [p.email for p in list_people(store, "ky-36-082")] == ["officer@kycity.gov"]
        assert find_person(store, "ky-36-082", "gone@kycity.gov").active is False  # type: ignore[union-attr]
        assert find_person(store, "ky-36-082", "quits@kycity.gov").active is False  # type: ignore[union-attr]
    finally:
        for uid in ("officer", "gone", "quits"):
            admin.delete(f"uid={uid},{churn}")


def test_leavers_refuse_an_empty_result(slapd: Slapd, store: Engine) -> None:
    _import(slapd, store, SUFFIX)
    with pytest.raises(InputError, match="refusing"):
        _import(slapd, store, SUFFIX, filter="(uid=nobody-by-this-name)", leavers=True)
    assert len(list_people(store, "ky-36-082")) == 2


def _one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def test_wrong_password_is_one_line_and_never_shown(slapd: Slapd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, "not-the-password-xyzzy")
    with pytest.raises(InputError) as exc:
        fetch_people(slapd.url, SUFFIX, bind_dn=ROOTDN, password_env=PW_ENV)
    msg = _one_line(exc)
    assert "refused" in msg and PW_ENV in msg and "xyzzy" not in msg and slapd.password not in msg


@pytest.mark.parametrize("kwargs, message", [
    ({"password_env": None}, "needs --password-env"),
    ({"password_env": "CIVICAUP_TEST_UNSET_VAR"}, "is not set"),
    ({"base_dn": "ou=nowhere,dc=kycity,dc=gov"}, "noSuchObject"),
    ({"filter": "(uid=unbalanced"}, "failed"),
])
def test_bad_arguments_give_one_line_errors(slapd: Slapd, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object],
                                            message: str) -> None:
    monkeypatch.setenv(PW_ENV, slapd.password)
    monkeypatch.delenv("CIVICAUP_TEST_UNSET_VAR", raising=False)
    args: dict[str, object] = {"base_dn": SUFFIX, "bind_dn": ROOTDN, "password_env": PW_ENV, **kwargs}
    with pytest.raises(InputError, match=message) as exc:
        fetch_people(slapd.url, **args)  # type: ignore[arg-type]
    assert slapd.password not in _one_line(exc)


def test_unreachable_server_is_one_line() -> None:
    with pytest.raises(InputError, match="cannot reach") as exc:
        fetch_people(f"ldap://127.0.0.1:{_free_port()}", SUFFIX, timeout=3)
    _one_line(exc)


def _cli(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CIVICAUP_DB_URL"}
    full.update(env, CIVICAUP_HOME=str(home))
    exe = Path(sys.executable).with_name("civicaup")
    return subprocess.run([str(exe), "directory", *args], capture_output=True, text=True, env=full, timeout=120)


def test_cli_imports_audits_and_never_records_the_password(slapd: Slapd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ["import-ldap", "--policy", "ky-36-082", "--url", slapd.url, "--base-dn", SUFFIX, "--bind-dn", ROOTDN,
            "--password-env", "CITY_LDAP_PW", "--leavers"]
    r = _cli(home, *args, env={"CITY_LDAP_PW": slapd.password})
    assert r.returncode == 0, r.stderr
    assert "imported 2 people into ky-36-082" in r.stdout and "1 disabled" in r.stdout
    assert slapd.password not in r.stdout + r.stderr
    engine = open_store(f"sqlite:///{home / 'civicaup.db'}")
    [entry] = [e for e in audit.entries(engine) if e.action == "directory-import-ldap"]
    assert entry.policy == "ky-36-082" and slapd.url in entry.subject and '"imported":2' in entry.detail
    assert slapd.password not in entry.detail + entry.subject
    for f in home.rglob("*"):
        if f.is_file():
            assert slapd.password.encode() not in f.read_bytes(), f

    bad = _cli(home, *args, env={"CITY_LDAP_PW": "wrong-password-plugh"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "refused" in bad.stderr and "plugh" not in bad.stderr

    down = _cli(home, "import-ldap", "--policy", "ky-36-082", "--url", f"ldap://127.0.0.1:{_free_port()}",
                "--base-dn", SUFFIX, env={})
    assert down.returncode == 2 and len(down.stderr.strip().splitlines()) == 1 and "cannot reach" in down.stderr


def test_sync_reads_the_configured_directory_and_a_password_file(slapd: Slapd, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    pw = tmp_path / "ldap.pw"
    pw.write_text(slapd.password + "\n")
    pw.chmod(0o600)
    (home / "civicaup.toml").write_text(
        f'[directory]\nsource = "ldap"\nldap_url = "{slapd.url}"\nbase_dn = "{SUFFIX}"\nbind_dn = "{ROOTDN}"\n'
        f'bind_password_file = "{pw}"\n')
    r = _cli(home, "sync", "--policy", "ky-36-082", env={})
    assert r.returncode == 0, r.stderr
    assert "imported 2 people into ky-36-082" in r.stdout
    engine = open_store(f"sqlite:///{home / 'civicaup.db'}")
    assert find_person(engine, "ky-36-082", "a.mayor@kycity.gov") is not None
    shown = subprocess.run([str(Path(sys.executable).with_name("civicaup")), "config", "show"], capture_output=True,
                           text=True, env={**os.environ, "CIVICAUP_HOME": str(home)}, timeout=60)
    assert slapd.password not in shown.stdout

    pw.write_text("")
    empty = _cli(home, "sync", "--policy", "ky-36-082", env={})
    assert empty.returncode == 2 and "is empty" in empty.stderr and len(empty.stderr.strip().splitlines()) == 1


def test_sync_from_the_configured_csv(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    csv = tmp_path / "people.csv"
    csv.write_text("email,name,department,title\nmayor@kycity.gov,Ann Mayor,Administration,Mayor\n")
    (home / "civicaup.toml").write_text(f'[directory]\nsource = "csv"\ncsv = "{csv}"\n')
    r = _cli(home, "sync", "--policy", "ky-36-082", env={})
    assert r.returncode == 0, r.stderr
    assert "imported 1 people into ky-36-082" in r.stdout
