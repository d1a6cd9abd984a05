"""`civicaup directory import|import-ldap|sync|list`: people, departments, titles and roles."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from civicaup.interfaces.cli.output import emit_json
from civicaup.policy.registry import get_pack
from civicaup.stores import audit
from civicaup.stores.db import open_store
from civicaup.stores.directory import import_people, list_people
from civicaup.stores.ldap_directory import import_ldap

app = typer.Typer(no_args_is_help=True, help="The directory: people with their department, title and roles.")


@app.command("import")
def import_(file: Path = typer.Argument(..., metavar="FILE.csv", help="email,name,department,title[,roles]"),
            policy: str = typer.Option(..., "--policy"),
            leavers: bool = typer.Option(False, "--leavers", help="anyone not in the file loses access now")) -> None:
    """Import the HR export; titles are mapped to roles by the pack."""
    pack = get_pack(policy)
    engine = open_store()
    report = import_people(engine, pack, file, leavers=leavers)
    audit.append(engine, actor="cli", action="directory-import", subject=str(file), policy=policy,
                 detail={"imported": report.imported, "deactivated": report.deactivated})
    print(f"imported {report.imported} people into {policy}" +
          (f"; {report.deactivated} leavers lost access" if leavers else ""))


@app.command("import-ldap")
def import_ldap_(policy: str = typer.Option(..., "--policy"),
                 url: str = typer.Option(..., "--url", help="ldap://HOST[:PORT] or ldaps://HOST[:PORT]"),
                 base_dn: str = typer.Option(..., "--base-dn", help="where to search, e.g. dc=kycity,dc=gov"),
                 bind_dn: Optional[str] = typer.Option(None, "--bind-dn", help="bind as this DN (else anonymous)"),
                 password_env: Optional[str] = typer.Option(
                     None, "--password-env", metavar="VAR", help="environment variable holding the bind password"),
                 filter_: str = typer.Option("(objectClass=person)", "--filter", help="LDAP search filter"),
                 leavers: bool = typer.Option(False, "--leavers",
                                              help="disabled accounts and anyone not found lose access now")) -> None:
    """Import people from LDAP / Active Directory (mail, displayName|cn, department|ou, title)."""
    pack = get_pack(policy)
    engine = open_store()
    report = import_ldap(engine, pack, url, base_dn, bind_dn=bind_dn, password_env=password_env, filter=filter_,
                         leavers=leavers)
    audit.append(engine, actor="cli", action="directory-import-ldap", subject=f"{url} {base_dn}", policy=policy,
                 detail={"imported": report.imported, "deactivated": report.deactivated,
                         "disabled": report.disabled, "without_mail": report.without_mail,
                         "filter": filter_, "bind_dn": bind_dn or "", "leavers": leavers})
    print(f"imported {report.imported} people into {policy} from {url}" +
          (f"; {report.disabled} disabled accounts skipped" if report.disabled else "") +
          (f"; {report.without_mail} entries without mail skipped" if report.without_mail else "") +
          (f"; {report.deactivated} leavers lost access" if leavers else ""))


@app.command("sync")
def sync(policy: str = typer.Option(..., "--policy"),
         leavers: bool = typer.Option(False, "--leavers", help="anyone not found (or disabled) loses access now")
         ) -> None:
    """Import from the directory source in the configuration ([directory]: csv file or LDAP); for a timer."""
    from civicaup import settings
    from civicaup.errors import InputError

    d = settings.load().directory
    if d.source == "csv":
        if d.csv is None:
            raise InputError("directory.csv is not set in the configuration (or use 'directory import FILE.csv')")
        import_(d.csv.expanduser(), policy=policy, leavers=leavers)
        return
    if not d.ldap_url or not d.base_dn:
        raise InputError("directory.source is ldap but directory.ldap_url or directory.base_dn is not set")
    pack = get_pack(policy)
    engine = open_store()
    report = import_ldap(engine, pack, d.ldap_url, d.base_dn, bind_dn=d.bind_dn or None, filter=d.filter,
                         leavers=leavers, password_file=d.bind_password_file,
                         password_env="CIVICAUP_LDAP_PASSWORD" if d.bind_password_file is None else None)
    audit.append(engine, actor="cli", action="directory-import-ldap", subject=f"{d.ldap_url} {d.base_dn}",
                 policy=policy, detail={"imported": report.imported, "deactivated": report.deactivated,
                                        "disabled": report.disabled, "without_mail": report.without_mail,
                                        "filter": d.filter, "bind_dn": d.bind_dn, "leavers": leavers})
    print(f"imported {report.imported} people into {policy} from {d.ldap_url}" +
          (f"; {report.disabled} disabled accounts skipped" if report.disabled else "") +
          (f"; {report.deactivated} leavers lost access" if leavers else ""))


@app.command("list")
def list_(policy: str = typer.Option(..., "--policy"), role: Optional[str] = typer.Option(None, "--role"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """People of a policy, optionally only those with a role."""
    get_pack(policy)
    found = list_people(open_store(), policy, role=role)
    if as_json:
        emit_json([{"email": p.email, "name": p.name, "department": p.department, "title": p.title,
                    "roles": list(p.roles)} for p in found])
        return
    for p in found:
        print(f"{p.email:40} {p.name:24} {p.department:20} {p.title:30} {','.join(p.roles)}")
