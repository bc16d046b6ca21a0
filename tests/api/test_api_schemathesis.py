"""Schemathesis against the app's own OpenAPI schema, in process: no operation answers 5xx.

Every operation gets a few generated cases, sent once without a key and once with a valid one
(so the authenticated paths are explored too); bounded to stay well under a minute.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

EXAMPLES = 8


def test_no_server_errors(client: TestClient) -> None:
    new_esp(client)
    _, headers = new_account(client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures: list[str] = []
    operations = 0
    statuses: set[int] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            for extra in ({}, headers):
                response = case.call(headers=extra)
                statuses.add(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:200]}")
                else:
                    assert response.status_code < 500

        run()
    assert operations >= 15
    assert not failures, failures
    assert {200, 401, 422} <= statuses
