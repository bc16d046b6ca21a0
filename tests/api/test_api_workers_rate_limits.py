"""With several workers each worker limits its share of a client's budget: 1/N of the rate and of the burst, so that
the N workers together never let a client past its budget (docs/api.md#several-workers)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings


def test_each_of_two_workers_lets_a_client_send_half_its_burst(make_settings: Callable[..., Settings]) -> None:
    # A burst of 6 over 2 workers: 3 requests at once per worker; the rate (one token per 100 s) refills none meanwhile.
    app = create_app(make_settings(workers=2, rate_limit_per_s=0.01, rate_limit_burst=6))
    with TestClient(app) as client:
        statuses = [client.get("/health").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
