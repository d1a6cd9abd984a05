"""Packs load, broken packs fail with one line naming file, line, rule and field, coverage has no gaps."""
from __future__ import annotations

from pathlib import Path

import pytest

from civicaup.errors import PackError, UnknownPolicyError
from civicaup.policy.coverage import coverage
from civicaup.policy.load import parse_pack
from civicaup.policy.registry import BUILTIN, get_pack, pack_ids
from civicaup.policy.schema import Pack

PACKS = ["kirkwood-mo", "ste-genevieve-mo", "ky-36-082", "west-des-moines-ia", "rosemount-mn"]
KIRKWOOD = (BUILTIN / "kirkwood-mo" / "pack.yaml").read_text(encoding="utf-8")


def test_the_five_seed_packs_are_listed() -> None:
    assert set(PACKS) <= set(pack_ids())


@pytest.mark.parametrize("pack_id", PACKS)
def test_coverage_accounts_for_every_sentence_of_the_source(pack_id: str) -> None:
    cov = coverage(get_pack(pack_id))
    assert not cov.gaps, "\n".join(cov.gaps)
    assert cov.counts().get("enforced", 0) > 0


@pytest.mark.parametrize("pack_id", PACKS)
def test_source_text_is_the_seed_verbatim(pack_id: str) -> None:
    seeds = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("../shared/seeds not beside the repo")
    cp = get_pack(pack_id)
    assert cp.source_text in {f.read_text(encoding="utf-8") for f in seeds.glob("*.txt")}


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicyError, match="kirkwood-mo"):
        get_pack("springfield-xx")


def test_broken_action_names_file_line_rule_and_field() -> None:
    broken = KIRKWOOD.replace("    action: block\n", "    action: obliterate\n", 1)
    with pytest.raises(PackError) as exc:
        parse_pack(broken, "city.yaml")
    msg = str(exc.value)
    assert msg.startswith("city.yaml:") and "rule software-instant-messaging" in msg and "rules.action" in msg
    assert "\n" not in msg
    line = int(msg.split(":")[1].split(",")[0])
    assert "obliterate" in broken.splitlines()[line - 1]


def test_paraphrased_quote_is_rejected() -> None:
    broken = KIRKWOOD.replace('quote: "No instant messaging software may be downloaded"',
                              'quote: "Instant messaging programs are not allowed"')
    with pytest.raises(PackError, match="not verbatim"):
        parse_pack(broken, "city.yaml")


def test_hold_without_approvers_is_rejected() -> None:
    broken = KIRKWOOD.replace("    approvers: {any_of: [city-administrator]}\n", "", 1)
    with pytest.raises(PackError, match="a hold needs approvers"):
        parse_pack(broken, "city.yaml")


def test_unknown_role_in_titles_is_rejected() -> None:
    broken = KIRKWOOD.replace("MIS Department: [it]", "MIS Department: [wizard]")
    with pytest.raises(PackError, match="unknown role"):
        parse_pack(broken, "city.yaml")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(PackError, match=r"city.yaml:\d+"):
        parse_pack("id: x\nrules: [\n", "city.yaml")


def test_schema_is_json_schema_with_rules() -> None:
    schema = Pack.model_json_schema()
    assert "rules" in schema["properties"] and "Rule" in schema["$defs"]


def test_cities_differ_where_their_texts_differ() -> None:
    def approvers(pack_id: str, channel: str) -> set[tuple[str, ...]]:
        return {tuple(r.approvers.all_of or r.approvers.any_of) for r in get_pack(pack_id).rules_for(channel)
                if r.approvers}
    assert ("it",) in approvers("kirkwood-mo", "software")
    assert ("mayor", "police-chief") in approvers("ky-36-082", "software")
    assert ("city-administrator",) in approvers("ste-genevieve-mo", "software")
    assert get_pack("west-des-moines-ia").pack.limits.attachment_mb == 50
    assert get_pack("kirkwood-mo").exemptions["law-enforcement"].roles == ["law-enforcement"]
