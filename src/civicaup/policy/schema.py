"""The policy pack format: pydantic models, the single source of truth for `civicaup policy schema`.

A pack is data. Each rule quotes the clause it enforces, verbatim; each sentence of the source text
is listed under `clauses` with its status, so that `policy coverage` can account for all of it.
"""
from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["allow", "log", "flag", "hold", "block"]
Channel = Literal["mail", "web", "software", "hardware", "social", "access", "records"]
Window = Literal["work-time", "personal-time", "any"]
Status = Literal["enforced", "workflow", "informs", "cannot-act"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

ROLES = (
    "employee", "supervisor", "department-head", "it", "city-administrator", "mayor", "police-chief",
    "clerk", "hr", "communications", "law-enforcement", "elected-official", "third-party",
)

_ID = r"^[a-z0-9][a-z0-9-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    document: str
    file: str = Field(description="The source text shipped beside the pack, quoted verbatim.")
    enacted: str = ""
    ignore: list[str] = Field(default_factory=list,
                              description="Text in the source that is not policy (page furniture, site notices).")


class Jurisdiction(Strict):
    state: Literal["MO", "KY", "IA", "MN"]
    public_records_law: str
    retention_schedule: str


class Hours(Strict):
    """Working hours in the city's time zone; `source` says whether the text sets them or DESIGN's default applies."""
    days: list[Day] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: time = time(8, 0)
    end: time = time(17, 0)
    lunch: tuple[time, time] | None = (time(12, 0), time(13, 0))
    source: str = "default: the text sets no working hours (Monday-Friday 08:00-17:00, lunch 12:00-13:00)"


class City(Strict):
    name: str
    mail_domain: str
    broadcast: list[str] = Field(min_length=1, description="All-staff list addresses.")
    time_zone: str
    hours: Hours = Hours()
    free_mail_domains: list[str] = Field(
        default_factory=lambda: ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com",
                                 "live.com", "msn.com", "protonmail.com", "proton.me", "gmx.com", "mail.com"])


class Limits(Strict):
    attachment_mb: float | None = Field(None, description="Messages whose attachments exceed this size (MB).")
    mass_mail_recipients: int = Field(50, description="A message to more recipients than this is mass mail.")


class Approvers(Strict):
    """Who may approve a hold: `any_of` one of these roles, or `all_of` every one of them."""
    any_of: list[str] = Field(default_factory=list)
    all_of: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> "Approvers":
        if bool(self.any_of) == bool(self.all_of):
            raise ValueError("give exactly one of any_of / all_of")
        return self

    @property
    def roles(self) -> list[str]:
        return self.all_of or self.any_of

    @property
    def mode(self) -> Literal["all", "any"]:
        return "all" if self.all_of else "any"


class When(Strict):
    """The condition of a rule. Every key given must hold (an empty `when` matches every event of the channel)."""
    categories: list[str] = Field(default_factory=list, description="Any of these categories was found.")
    tags: list[str] = Field(default_factory=list,
                            description="And the finding carries any of these tags (e.g. solicitation:political).")
    protected: list[str] = Field(default_factory=list,
                                 description="For harassment: the protected classes this clause lists.")
    during: Window = "any"
    kinds: list[str] = Field(default_factory=list, description="Event kinds (access: read-mail, monitor-web...; "
                                                                 "social: comment, post, chat, draft).")
    actor_roles: list[str] = Field(default_factory=list, description="Only when the acting user has one of these.")
    actor_not_roles: list[str] = Field(default_factory=list, description="Only when the acting user has none of these.")


class Rule(Strict):
    id: str = Field(pattern=_ID)
    clause: str = Field(min_length=1)
    quote: str = Field(min_length=8, description="The clause text this rule enforces, verbatim from the source.")
    channels: list[Channel] = Field(min_length=1)
    when: When = When()
    action: Action
    approvers: Approvers | None = None
    exemptions: list[str] = Field(default_factory=list)
    note: str = ""

    @model_validator(mode="after")
    def _hold_needs_approvers(self) -> "Rule":
        if self.action == "hold" and self.approvers is None:
            raise ValueError("a hold needs approvers")
        return self


class Exemption(Strict):
    """Downgrades a finding to `log`, never hides it: by the acting user's role, or by a context the text names."""
    id: str = Field(pattern=_ID)
    clause: str
    quote: str
    roles: list[str] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list, description="Context categories, e.g. police-report.")

    @model_validator(mode="after")
    def _needs_a_test(self) -> "Exemption":
        if not (self.roles or self.context):
            raise ValueError("an exemption needs roles or context")
        return self


class Sentence(Strict):
    text: str = Field(min_length=2)
    status: Status
    why: str = ""
    handled_by: str = Field("", description="For workflow: the part of civicaup that carries it out.")

    @model_validator(mode="after")
    def _explain(self) -> "Sentence":
        if self.status != "enforced" and not self.why:
            raise ValueError(f"status {self.status} needs a why")
        return self


class Clause(Strict):
    ref: str
    title: str = ""
    sentences: list[Sentence] = Field(min_length=1)


class DetectionSetting(Strict):
    """How one content category is detected: which detectors count and how sure they must be."""
    min_confidence: float = Field(0.0, ge=0.0, le=1.0,
                                  description="Ignore this category's detector hits below this confidence.")
    detectors: list[str] | None = Field(None, description="Only hits of these detectors (names as in "
                                                          "civicaup.detect.DETECTORS); none listed: every detector.")


class Pack(Strict):
    id: str = Field(pattern=_ID)
    title: str
    version: str = "1"
    source: Source
    jurisdiction: Jurisdiction
    city: City
    titles: dict[str, list[str]] = Field(description="The city's own titles mapped to role vocabulary words.")
    limits: Limits = Limits()
    category_map: dict[str, str] = Field(default_factory=dict,
                                         description="Web list name -> category, over the default UT1 table.")
    web_fail_mode: Literal["closed", "open"] = Field(
        "closed", description="What the Squid helper answers when it cannot decide: closed refuses hosts listed in a "
                              "category a block rule names (everything when nothing works); open lets requests "
                              "through. Either way the failure is logged.")
    exemptions: list[Exemption] = Field(default_factory=list)
    detection: dict[str, DetectionSetting] = Field(
        default_factory=dict, description="Content category -> detectors and threshold, over civicaup's defaults.")
    rules: list[Rule] = Field(min_length=1)
    clauses: list[Clause] = Field(min_length=1)

    @field_validator("titles")
    @classmethod
    def _roles_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for title, roles in v.items():
            bad = [r for r in roles if r not in ROLES]
            if bad:
                raise ValueError(f"title {title!r} maps to unknown role(s) {', '.join(bad)}")
        return v

    @field_validator("detection")
    @classmethod
    def _detectors_known(cls, v: dict[str, DetectionSetting]) -> dict[str, DetectionSetting]:
        if not any(s.detectors for s in v.values()):
            return v
        from civicaup.detect.registry import DETECTORS  # only packs that name detectors pay for the import
        for category, setting in v.items():
            for name in setting.detectors or ():
                det = DETECTORS.get(name)
                if det is None:
                    raise ValueError(f"detection.{category}: unknown detector {name!r}")
                if category not in det.categories:
                    raise ValueError(f"detection.{category}: detector {name!r} does not emit {category!r}")
        return v

    @model_validator(mode="after")
    def _references(self) -> "Pack":
        ids = [r.id for r in self.rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate rule id(s): {', '.join(sorted(dup))}")
        ex = {e.id for e in self.exemptions}
        refs = {c.ref for c in self.clauses}
        for r in self.rules:
            for e in r.exemptions:
                if e not in ex:
                    raise ValueError(f"rule {r.id}: unknown exemption {e!r}")
            if r.clause not in refs:
                raise ValueError(f"rule {r.id}: clause {r.clause!r} is not listed under clauses")
        return self
