"""Governance tables (issue 7): approval requests and their votes, exemption grants, inventory, licences,
acknowledgements, training, cases and API tokens.

They share `civicaup.stores.tables.metadata`; migration 0006 creates them. Every row carries its `policy`
(the city), and every query filters on it: one install serves several cities, none sees another's rows.
"""
from __future__ import annotations

from sqlalchemy import (JSON, Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text,
                        UniqueConstraint)

from civicaup.stores.tables import metadata

TZ = DateTime(timezone=True)

# A request for something the pack holds for approval: software, a device, a look at another person's data,
# a personal or role exemption, a purchase, a social-media authorisation. `approvers` is one spec per held
# finding: {"rule", "clause", "roles", "needed" ("any"|"all"), "quote"}.
approval_requests = Table(
    "approval_requests", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # software, hardware, access, exemption, purchase, social
    Column("subject", String(500), nullable=False),  # what is asked for: a program, device, person, rule, URL
    Column("requester", String(320), nullable=False),
    Column("department", String(200), nullable=False, default=""),  # the requester's, when asked
    Column("reason", Text, nullable=False, default=""),
    Column("detail", JSON, nullable=False),  # kind-specific: access kind, grantee role, machine...
    Column("decision", JSON, nullable=False),  # the engine's Decision that held it
    Column("approvers", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, approved, denied, expired, withdrawn
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=True),  # a pending request lapses then
    Column("valid_until", TZ, nullable=True),  # a granted exemption or access ends then (None: no end)
    Column("reminded_at", TZ, nullable=True),
)
Index("ix_approval_requests_policy_status", approval_requests.c.policy, approval_requests.c.status)
Index("ix_approval_requests_requester", approval_requests.c.policy, approval_requests.c.requester)

approval_votes = Table(
    "approval_votes", metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("approval_requests.id"), nullable=False),
    Column("verdict", String(8), nullable=False),  # approve or deny
    Column("approver", String(320), nullable=False),
    Column("role", String(64), nullable=False),  # the role the approver acted in
    Column("rule", String(100), nullable=False),
    Column("clause", String(200), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("at", TZ, nullable=False),
    UniqueConstraint("request_id", "rule", "role", "verdict", name="uq_approval_votes_role"),
)

# One osquery result set imported for a machine; items are replaced on each import of that machine.
inventory_machines = Table(
    "inventory_machines", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("machine", String(255), nullable=False),
    Column("owner", String(320), nullable=False, default=""),
    Column("department", String(200), nullable=False, default=""),
    Column("source", String(1000), nullable=False, default=""),
    Column("imported_at", TZ, nullable=False),
    UniqueConstraint("policy", "machine", name="uq_inventory_machines"),
)

inventory_items = Table(
    "inventory_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("machine_id", Integer, ForeignKey("inventory_machines.id"), nullable=False),
    Column("policy", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # software or hardware
    Column("source_table", String(32), nullable=False),  # programs, deb_packages, apps, usb_devices
    Column("name", String(500), nullable=False),
    Column("version", String(200), nullable=False, default=""),
    Column("vendor", String(300), nullable=False, default=""),
    Column("status", String(16), nullable=False),  # ok, approved, baseline, violation, review
    Column("approved_by", String(300), nullable=False, default=""),  # catalogue entry, request id or baseline
    Column("action", String(8), nullable=False),  # the engine's action after approvals
    Column("rule", String(100), nullable=False, default=""),
    Column("clause", String(200), nullable=False, default=""),
    Column("decision", JSON, nullable=False),
)
Index("ix_inventory_items_policy_status", inventory_items.c.policy, inventory_items.c.status)

# The city's own list of approved software and devices, with licence terms (home use: Kentucky (E), West Des
# Moines Software Usage ¶4). `name` matches inventory names as whole words, case-insensitively.
licences = Table(
    "licences", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # software or hardware
    Column("name", String(300), nullable=False),
    Column("home_use", Boolean, nullable=True),  # None: the licence terms are not recorded
    Column("seats", Integer, nullable=True),
    Column("note", Text, nullable=False, default=""),
    Column("added_by", String(320), nullable=False),
    Column("added_at", TZ, nullable=False),
    UniqueConstraint("policy", "kind", "name", name="uq_licences"),
)

acknowledgements = Table(
    "acknowledgements", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("version", String(64), nullable=False),  # the pack's `version` acknowledged
    Column("at", TZ, nullable=False),
    Column("recorded_by", String(320), nullable=False),
    UniqueConstraint("policy", "email", "version", name="uq_acknowledgements"),
)

training = Table(
    "training", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("course", String(100), nullable=False),
    Column("assigned_at", TZ, nullable=False),
    Column("assigned_by", String(320), nullable=False),
    Column("due_at", TZ, nullable=True),
    Column("completed_at", TZ, nullable=True),
    UniqueConstraint("policy", "email", "course", name="uq_training"),
)

# Reports of suspected misuse and flags from the channels. Visible to HR and to the people it was routed to.
cases = Table(
    "cases", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("source", String(200), nullable=False),  # "report", or the channel of a flag ("mail", "social"...)
    Column("source_key", String(200), nullable=True),  # a flag's origin, e.g. "mail-quarantine:12": one case each
    Column("status", String(8), nullable=False),  # open or closed
    Column("reporter", String(320), nullable=False, default=""),
    Column("about", String(320), nullable=False, default=""),  # the person the report or flag concerns
    Column("department", String(200), nullable=False, default=""),
    Column("summary", Text, nullable=False),
    Column("routed_to", JSON, nullable=False),  # [{"email", "role", "as": "to"|"inform"}]
    Column("clause", String(200), nullable=False, default=""),  # the routing clause
    Column("findings", JSON, nullable=False),  # Finding JSON from the engine, for flags
    Column("evidence", JSON, nullable=False),  # links: URLs, "quarantine:12", "audit:40"
    Column("decision", Text, nullable=False, default=""),
    Column("outcome", String(32), nullable=False, default=""),  # none, counselling, warning, suspension, ...
    Column("created_at", TZ, nullable=False),
    Column("closed_at", TZ, nullable=True),
    Column("closed_by", String(320), nullable=False, default=""),
    UniqueConstraint("policy", "source_key", name="uq_cases_source_key"),
)
Index("ix_cases_policy_status", cases.c.policy, cases.c.status)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("token_hash", String(64), nullable=False),  # sha256 of the token; the token itself is never stored
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("revoked_at", TZ, nullable=True),
    Column("last_used_at", TZ, nullable=True),
    UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
)

GOVERNANCE_TABLES = (approval_requests, approval_votes, inventory_machines, inventory_items, licences,
                     acknowledgements, training, cases, api_tokens)
