"""A bounded schemathesis run against the published OpenAPI document: generated requests, valid and not, to every
operation as an IT employee of Kirkwood (who may reach most endpoints). Bad input must never produce a 5xx."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from civicaup.governance import tokens
from civicaup.interfaces.api.app import create_app
from tests.governance.helpers import make_store


@schemathesis.serializer("message/rfc822")
def _raw_message(ctx: Any, value: Any) -> bytes:
    """The mail decision takes the raw message bytes: whatever was generated, as bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass") if value is not None else b""


def test_no_server_error_for_any_generated_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_store(tmp_path, monkeypatch)
    token = tokens.create(engine, "kirkwood-mo", "lee.chan@kirkwoodmo.org").token
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine=engine))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])

        check()
