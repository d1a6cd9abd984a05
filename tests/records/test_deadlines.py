"""Statutory deadlines per state, with each state's holidays and weekend rules (dates worked by hand)."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from civicaup.records.deadlines import deadline
from civicaup.records.holidays import holidays


@pytest.mark.parametrize("state, received, kind, due, statute", [
    # MO: end of the third business day following receipt (RSMo 610.023.3).
    # Thu 2026-07-02; Fri 07-03 is Independence Day observed (07-04 is a Saturday): Mon 6, Tue 7, Wed 8.
    ("MO", date(2026, 7, 2), "public", "2026-07-08", "RSMo 610.023.3"),
    # Fri 2026-09-04 before Labor Day (Mon 09-07): Tue 8, Wed 9, Thu 10.
    ("MO", date(2026, 9, 4), "public", "2026-09-10", "RSMo 610.023.3"),
    # Fri 2026-02-13 before Washington's Birthday (Mon 02-16); Lincoln Day (Thu 02-12) is already past.
    ("MO", date(2026, 2, 13), "public", "2026-02-19", "RSMo 610.023.3"),
    # Received on Saturday 2026-05-09: Mon 11, Tue 12, Wed 13 (Truman Day, Fri 05-08, is before receipt).
    ("MO", date(2026, 5, 9), "public", "2026-05-13", "RSMo 610.023.3"),
    # KY: five days excepting Saturdays, Sundays and legal holidays (KRS 61.880(1)).
    # Fri 2026-11-20: Mon 23, Tue 24, Wed 25, (Thu 26 Thanksgiving), Fri 27, Mon 30.
    ("KY", date(2026, 11, 20), "public", "2026-11-30", "KRS 61.880(1)"),
    # Fri 2028-11-03: Mon 6, (Tue 7 presidential election day), Wed 8, Thu 9, (Fri 10 Veterans Day observed,
    # 11-11 is a Saturday), Mon 13, Tue 14.
    ("KY", date(2028, 11, 3), "public", "2028-11-14", "KRS 61.880(1)"),
    # IA: chapter 22 sets no fixed day.
    ("IA", date(2026, 7, 2), "public", None, "Iowa Code 22.8(4)"),
    # MN public data: "reasonable time"; data subject: ten days excluding weekends and holidays.
    ("MN", date(2026, 6, 18), "public", None, "Minn. Stat. 13.03, subd. 2"),
    # Thu 2026-06-18: (Fri 19 Juneteenth), Mon 22 .. Fri 26 = 5, Mon 29, Tue 30, Wed 1, Thu 2 = 9,
    # (Fri 3 Independence Day observed), Mon 6 = 10.
    ("MN", date(2026, 6, 18), "data-subject", "2026-07-06", "Minn. Stat. 13.04, subd. 3"),
])
def test_deadlines(state: str, received: date, kind: str, due: str | None, statute: str) -> None:
    dl = deadline(state, received, kind)
    assert (dl.due.isoformat() if dl.due else None, dl.statute) == (due, statute)
    if due is None:
        assert dl.business_days is None and "no fixed" in dl.note


def test_iowa_gives_the_confidentiality_review_limits() -> None:
    dl = deadline("IA", date(2026, 7, 2))
    # 10 business days: (Fri 3 observed holiday) Mon 6 .. Fri 10 = 5, Mon 13 .. Fri 17 = 10; 20 calendar days: 22nd
    assert {k: v.isoformat() for k, v in dl.review_limits.items()} == {
        "ordinarily, confidentiality review": "2026-07-17", "at most, confidentiality review": "2026-07-22"}


def test_weekend_observance_rules() -> None:
    mn2027 = {h.day: h.name for h in holidays("MN", 2027)}
    assert mn2027[date(2027, 6, 18)] == "Juneteenth (observed)"  # 19 June 2027 is a Saturday
    assert date(2027, 12, 24) in mn2027  # Christmas 2027 is a Saturday
    assert date(2027, 12, 31) in {h.day for h in holidays("KY", 2027)}  # New Year 2028 is a Saturday
    mo2023 = {h.day for h in holidays("MO", 2023)}
    assert date(2023, 1, 2) in mo2023  # New Year's Day 2023 is a Sunday: Monday
    assert date(2021, 6, 18) not in {h.day for h in holidays("MO", 2021)}  # Juneteenth only from 2022


def test_closed_days_given_by_the_city_push_the_date() -> None:
    assert deadline("KY", date(2026, 11, 20), closed=frozenset({date(2026, 11, 27)})).due == date(2026, 12, 1)


def test_cli_deadline_json_contract(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("civicaup")
    r = subprocess.run([str(exe), "records", "deadline", "--state", "MO", "--received", "2026-07-02T16:30",
                        "--json"], capture_output=True, text=True, env={"CIVICAUP_HOME": str(tmp_path),
                                                                        "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"due", "statute", "business_days", "note"} <= set(d)
    assert (d["due"], d["statute"], d["business_days"]) == ("2026-07-08", "RSMo 610.023.3", 3)
    r = subprocess.run([str(exe), "records", "deadline", "--state", "MN", "--received", "2026-06-18", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert json.loads(r.stdout)["due"] is None
    r = subprocess.run([str(exe), "records", "deadline", "--state", "TX", "--received", "2026-06-18", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
