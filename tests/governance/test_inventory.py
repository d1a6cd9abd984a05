"""osquery results against approvals: unapproved and prohibited software and devices become violations citing the
right clause per pack; the baseline, the licence list and granted requests approve; licences record home use."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine

from civicaup.errors import InputError
from civicaup.governance import approvals, asks, inventory
from civicaup.governance.errors import ForbiddenError
from civicaup.governance.people import actor_of, person
from civicaup.policy.registry import get_pack

from .helpers import OSQUERY


def violations(store: Engine, policy: str, machine: str) -> dict[str, tuple[str, str, str]]:
    return {v["name"]: (v["problem"], v["rule"], v["clause"]) for v in inventory.violations(store, policy)
            if v["machine"] == machine}


def test_kirkwood_windows_workstation_cites_clause_b(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    r = inventory.import_file(store, pack, OSQUERY / "windows-workstation.json", "kw-pw-014",
                              owner="pat.jones@kirkwoodmo.org")
    assert r.items == 9
    v = violations(store, "kirkwood-mo", "kw-pw-014")
    assert v["Skype version 8.104"] == ("prohibited", "software-instant-messaging", "b")
    assert v["Spotify"][0] == "unapproved" and v["Spotify"][2] == "b"
    assert v["SanDisk Corp. Cruzer Blade (usb mass storage)"] == ("unapproved", "hardware-personal-device", "b")
    assert not any("Visual C++" in n or "root hub" in n for n in v)  # the machine's own parts


def test_kentucky_cites_C_and_west_des_moines_software_usage(store: Engine) -> None:
    inventory.import_file(store, get_pack("ky-36-082"), OSQUERY / "windows-workstation.json", "ky-pw-02",
                          owner="jesse.nolan@kycity.gov")
    ky = violations(store, "ky-36-082", "ky-pw-02")
    assert {c for _, _, c in ky.values()} == {"(C)"}
    assert ky["SanDisk Corp. Cruzer Blade (usb mass storage)"][1] == "hardware-connect-approval"
    wdm = get_pack("west-des-moines-ia")
    inventory.import_file(store, wdm, OSQUERY / "debian-laptop.jsonl", "wdm-pw-lt07", owner="taylor.nguyen@wdm.iowa.gov")
    inventory.import_file(store, wdm, OSQUERY / "macbook-apps.json", "wdm-mac-3")
    lt = violations(store, wdm.id, "wdm-pw-lt07")
    assert lt["anydesk"] == ("prohibited", "software-remote-access", "Software Usage ¶8")
    assert lt["transmission-qt"] == ("prohibited", "software-personal", "Software Usage ¶4")  # baseline can't allow
    assert lt["firefox-esr"] == ("unapproved", "software-it-coordinates", "Software Usage ¶2")
    assert lt["Netgear, Inc. AC340U Mobile Hotspot (modem)"][1:] == ("hardware-alternate-isp", "Software Usage ¶9")
    assert "libc6" not in lt and "bash" not in lt
    mac = violations(store, wdm.id, "wdm-mac-3")
    assert mac["Steam"] == ("prohibited", "software-personal", "Software Usage ¶4")
    assert "Safari" not in mac


def test_licence_list_and_granted_requests_approve_and_reimport_replaces(store: Engine) -> None:
    pack = get_pack("kirkwood-mo")
    with pytest.raises(ForbiddenError):
        inventory.allow(store, pack, "Microsoft Office", "pat.jones@kirkwoodmo.org")
    inventory.allow(store, pack, "Microsoft Office", "lee.chan@kirkwoodmo.org", home_use=False, seats=120)
    inventory.allow(store, pack, "Adobe Acrobat Reader", "lee.chan@kirkwoodmo.org", home_use=True)
    inventory.allow(store, pack, "Skype", "lee.chan@kirkwoodmo.org")  # the list cannot allow a prohibited program
    pat = person(store, pack.id, "pat.jones@kirkwoodmo.org")
    rid = approvals.submit(store, pack, asks.software(pack, actor_of(pat), datetime.now(timezone.utc), "Notepad++"),
                           pat).request.id
    approvals.approve(store, pack, rid, "lee.chan@kirkwoodmo.org")
    inventory.import_file(store, pack, OSQUERY / "windows-workstation.json", "kw-pw-014",
                          owner="pat.jones@kirkwoodmo.org")
    v = violations(store, pack.id, "kw-pw-014")
    assert not any(n.startswith(("Microsoft Office", "Adobe", "Notepad++")) for n in v)
    assert v["Skype version 8.104"][0] == "prohibited"
    assert inventory.home_use(store, pack.id, "Microsoft Office Professional Plus 2019") is False
    assert inventory.home_use(store, pack.id, "Adobe Acrobat Reader DC") is True
    assert inventory.home_use(store, pack.id, "Spotify") is None
    inventory.import_file(store, pack, OSQUERY / "windows-workstation.json", "kw-pw-014",
                          owner="pat.jones@kirkwoodmo.org")
    assert len([x for x in inventory.violations(store, pack.id) if x["machine"] == "kw-pw-014"]) == len(v)


def test_osquery_input_forms_and_bad_input() -> None:
    rows = json.loads((OSQUERY / "macbook-apps.json").read_text())
    assert {i.name for i in inventory.parse(json.dumps(rows))} >= {"Safari", "Steam"}
    lines = (OSQUERY / "debian-laptop.jsonl").read_text()
    items = inventory.parse(lines)
    assert {i.table for i in items} == {"deb_packages", "usb_devices"}
    with pytest.raises(InputError, match="not JSON"):
        inventory.parse("{nope")
    with pytest.raises(InputError, match="no rows"):
        inventory.parse('{"processes": [{"pid": "1"}]}')


def test_kentucky_copy_software_request_carries_the_licences_home_use(store: Engine) -> None:
    pack = get_pack("ky-36-082")
    inventory.allow(store, pack, "Microsoft Office", "beth.amos@kycity.gov", home_use=True)
    jesse = person(store, pack.id, "jesse.nolan@kycity.gov")
    ask = asks.access(pack, actor_of(jesse), datetime.now(timezone.utc), "copy-software",
                      "Microsoft Office Professional Plus 2019", "evening work orders")
    out = approvals.submit(store, pack, ask, jesse)
    assert out.request.approvers[0]["rule"] == "access-copy-software-home"
    assert out.request.approvers[0]["roles"] == ["mayor", "police-chief"] and out.request.approvers[0]["needed"] == "all"
    assert out.request.detail["licence_home_use"] is True
