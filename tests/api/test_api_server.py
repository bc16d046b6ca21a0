"""A real uvicorn server on 127.0.0.1 driven with httpx: lifecycle over HTTP, stop, restart, same state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from api.main import create_app
from api.settings import Settings
from market.chain.anvil import free_port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_http_lifecycle_and_restart(make_settings: Callable[..., Settings], db_url: str) -> None:
    settings = make_settings(db_url=db_url)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        esp = http.post("/accounts").json()
        esp_headers = {"Authorization": f"Bearer {esp['api_key']}"}
        assert http.post("/esps", json={"name": "edge"}, headers=esp_headers).status_code == 201
        producer = http.post("/accounts").json()
        headers = {"Authorization": f"Bearer {producer['api_key']}"}
        task = http.post("/tasks", json={"prompt": "over http", "esp": esp["address"]}, headers=headers).json()
        product = http.post("/products", json={"task_id": task["id"]}, headers=headers).json()
        http.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 60}, headers=headers)
        before = (http.get(f"/products/{product['token_id']}").json(), http.get(f"/esps/{esp['address']}").json(),
                  http.get("/health").json()["indexed_block"])
    with serving(make_settings(db_url=db_url)) as url, httpx.Client(base_url=url, timeout=30) as http:
        after = (http.get(f"/products/{product['token_id']}").json(), http.get(f"/esps/{esp['address']}").json(),
                 http.get("/health").json()["indexed_block"])
        assert after == before
        assert http.get("/accounts/me", headers=headers).json()["address"] == producer["address"]
