"""The explorer in a real browser: Debian's chromium driven by Playwright against a uvicorn server on 127.0.0.1
after a short market lifecycle (docs/explorer.md). One server and one browser for the whole module.

Every page loads with no console error and no failed request, has no serious or critical axe-core
violation, and is screenshot at 1280 and 375 px into out/screenshots/. The search finds a product by its
content hash and an ESP by its address; a trade claimed over the API changes the escrow page without a
reload; the ESP's reputation chart has a point per rating and one for now, the last equal to the API's
GET /esps/{address}/reputation; a simulation started from the form reports its progress and invariants.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from explore_helpers import CHROMIUM, SCREENSHOTS, Market, Probe, auth, explorer_app, lifecycle, serious_violations, serving

from market.chain.connection import Chain

sync_api = pytest.importorskip("playwright.sync_api")

if not Path(CHROMIUM).exists():  # `make test` installs it (Makefile target `chromium`)
    pytest.skip(f"{CHROMIUM} is not installed: run `make chromium`", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Market, httpx.Client]]:
    chain = Chain.embedded()
    app = explorer_app(tmp_path_factory.mktemp("explorer"), chain)
    window = app.state.market.market.registry.challenge_window()
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield url, lifecycle(http, chain, window), http


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def pages(market: Market) -> dict[str, str]:
    esp = market.esp["address"]
    return {
        "home": "/explore",
        "products": "/explore/products",
        "product": f"/explore/products/{market.token}",
        "esps": "/explore/esps",
        "esp": f"/explore/esps/{esp}",
        "address": f"/explore/address/{market.producer['address']}",
        "escrow": f"/explore/locks/{market.task_lock}",
        "simulations": "/explore/simulations",
    }


PAGES = ["home", "products", "product", "esps", "esp", "address", "escrow", "simulations"]


def visit_cleanly(page: Any, url: str, name: str) -> list[str]:
    """Load `url` at 1280 px (axe, a screenshot), narrow the window to 375 px (no sideways scrolling, a
    screenshot): every problem found on the way."""
    probe = Probe()
    probe.attach(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(url, wait_until="load")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), full_page=True)
    problems = [f"axe {v['impact']} {v['id']}: {v['nodes']}" for v in serious_violations(page)]
    page.set_viewport_size({"width": 375, "height": 900})
    try:  # charts follow the window's width on their next resize event
        page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth", timeout=3000)
    except sync_api.TimeoutError:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        problems.append(f"{overflow} px wider than the 375 px screen")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-375.png"), full_page=True)
    page.wait_for_load_state("networkidle")
    return probe.errors + problems


@pytest.mark.parametrize("name", PAGES)
def test_each_page_loads_cleanly_is_accessible_and_fits_a_phone(
    site: tuple[str, Market, httpx.Client], page: Any, name: str
) -> None:
    url, market, _ = site
    assert visit_cleanly(page, url + pages(market)[name], name) == []


def test_search_finds_a_product_by_its_content_hash(site: tuple[str, Market, httpx.Client], page: Any) -> None:
    url, market, _ = site
    page.goto(url + "/explore")
    page.get_by_label("Token id, content hash, address or lock id").fill(market.content_hash)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/explore/products/{market.token}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Product {market.token}"


def test_search_finds_an_esp_by_its_address(site: tuple[str, Market, httpx.Client], page: Any) -> None:
    url, market, _ = site
    page.goto(url + "/explore")
    page.get_by_label("Token id, content hash, address or lock id").fill(market.esp["address"].lower())
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/explore/esps/{market.esp['address']}")
    assert page.get_by_role("heading", level=1).inner_text() == "ESP edge one"


def test_a_search_that_matches_nothing_says_so_with_a_404(site: tuple[str, Market, httpx.Client]) -> None:
    _, _, http = site
    reply = http.get("/explore/search", params={"q": "0x" + "ab" * 32})
    assert reply.status_code == 404 and "Nothing matches" in reply.text


def test_the_esp_chart_has_a_point_per_rating_and_one_for_now(site: tuple[str, Market, httpx.Client], page: Any) -> None:
    url, market, http = site
    page.goto(url + f"/explore/esps/{market.esp['address']}", wait_until="networkidle")
    series = page.evaluate(
        "() => Chart.getChart(document.getElementById('reputation-chart')).data.datasets.map(d => [d.label, d.data])"
    )
    labels = [label for label, _ in series]
    assert labels == ["T (reputation)", "belief", "disbelief", "uncertainty"]
    trust = dict(series)["T (reputation)"]
    assert len(trust) == 2  # the honest ESP got one rating: after it, and now
    api = http.get(f"/esps/{market.esp['address']}/reputation").json()
    assert trust[-1] == pytest.approx(api["reputation"])
    assert dict(series)["belief"][-1] + dict(series)["disbelief"][-1] + dict(series)["uncertainty"][-1] == pytest.approx(1.0)


def test_a_trade_claimed_over_the_api_changes_the_escrow_page_without_a_reload(
    site: tuple[str, Market, httpx.Client], page: Any
) -> None:
    url, market, http = site
    page.goto(url + f"/explore/locks/{market.trade['lock_id']}")
    state = page.get_by_test_id("lock-state")
    assert state.inner_text() == "locked"
    assert page.get_by_test_id("countdown").inner_text().endswith("s left")
    page.evaluate("() => { window.notReloaded = true; }")
    claimed = http.post(f"/trades/{market.trade['id']}/claim", headers=auth(market.producer))
    assert claimed.status_code == 200, claimed.text
    sync_api.expect(state).to_have_text("claimed", timeout=10_000)
    assert page.evaluate("() => window.notReloaded === true")


def test_similar_images_ranks_the_uploaded_products_image_first(
    site: tuple[str, Market, httpx.Client], page: Any, tmp_path: Path
) -> None:
    url, market, http = site
    image = tmp_path / "upload.png"
    image.write_bytes(http.get(f"/products/{market.token}/content").content)
    page.goto(url + "/explore")
    page.get_by_label("Image (PNG or JPEG) to compare by pHash").set_input_files(str(image))
    page.get_by_role("button", name="Find similar products").click()
    page.wait_for_url("**/explore/similar")
    first = page.locator("table tbody tr").first.locator("td")
    assert first.nth(0).inner_text() == f"#{market.token}" and first.nth(1).inner_text() == "0"
    assert visit_similar_is_clean(page)


def visit_similar_is_clean(page: Any) -> bool:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "similar-1280.png"), full_page=True)
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 375, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / "similar-375.png"), full_page=True)
    return True


def test_an_upload_that_is_not_an_image_is_a_422_page(site: tuple[str, Market, httpx.Client]) -> None:
    _, _, http = site
    reply = http.post("/explore/similar", files={"image": ("x.png", b"not an image", "image/png")})
    assert reply.status_code == 422 and "not an image" in reply.text


def test_an_unknown_product_is_a_404_page(site: tuple[str, Market, httpx.Client]) -> None:
    _, _, http = site
    reply = http.get("/explore/products/999999")
    assert reply.status_code == 404 and "No product 999999" in reply.text


def rows_of(http: httpx.Client, path: str) -> list[dict[str, str]]:
    reply = http.get(path)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv"), path
    return list(csv.DictReader(io.StringIO(reply.text)))


def test_every_list_exports_as_csv(site: tuple[str, Market, httpx.Client]) -> None:
    _, market, http = site
    esp = market.esp["address"]
    assert [r["token_id"] for r in rows_of(http, "/explore/products.csv")] == [
        str(market.token),
        str(market.second),
        str(market.accused),
    ]
    assert [r["name"] for r in rows_of(http, "/explore/esps.csv")] == ["edge one", "cheat"]
    assert [(r["positive"], r["score"]) for r in rows_of(http, f"/explore/esps/{esp}/ratings.csv")] == [("True", "80")]
    assert len(rows_of(http, f"/explore/esps/{esp}/reputation.csv")) == 2
    assert {r["state"] for r in rows_of(http, f"/explore/esps/{esp}/jobs.csv")} == {"registered"}  # every job a product
    verdicts = rows_of(http, f"/explore/products/{market.token}/challenges.csv")
    assert [(r["original_id"], r["duplicate_id"], r["upheld"]) for r in verdicts] == [
        (str(market.token), str(market.accused), "False")
    ]
    owners = rows_of(http, f"/explore/products/{market.token}/owners.csv")
    assert owners[0]["to"] == market.producer["address"]  # the mint
    produced = rows_of(http, f"/explore/address/{market.producer['address']}/products.csv")
    assert sorted(int(r["token_id"]) for r in produced if r["relation"] == "produced") == [market.token, market.second]
    assert any(r["event"] == "ProductRegistered" for r in rows_of(http, "/explore/activity.csv"))


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_a_simulation_started_from_the_form_shows_progress_then_its_invariants(
    site: tuple[str, Market, httpx.Client], page: Any
) -> None:
    url, market, _ = site
    probe = Probe()
    probe.attach(page)
    page.goto(url + "/explore/simulations")
    page.get_by_label("API key").fill(market.buyer["api_key"])
    for field, value in (("Producers", "1"), ("Consumers", "0"), ("Attackers", "0"), ("Periods", "1")):
        page.get_by_label(field).fill(value)
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_url("**/explore/simulations/*")
    assert page.get_by_test_id("sim-status").inner_text() == "running"  # a run takes seconds: its page came first
    sync_api.expect(page.get_by_test_id("sim-status")).to_have_text("done", timeout=120_000)  # the page follows it
    invariants = page.get_by_test_id("invariants").locator("li").all_inner_texts()
    assert invariants and all(text.startswith("holds: ") for text in invariants)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.querySelectorAll('canvas[data-chart]').length") == 3
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "simulation-1280.png"), full_page=True)
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 375, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / "simulation-375.png"), full_page=True)
    runs = list(csv.DictReader(io.StringIO(page.request.get(url + "/explore/simulations.csv").text())))  # the page's cookie
    assert [(r["status"], r["periods_done"]) for r in runs] == [("done", "1")]
    assert probe.errors == []


def test_the_keyboard_reaches_the_content_and_the_search_box_from_the_top(
    site: tuple[str, Market, httpx.Client], page: Any
) -> None:
    url, market, _ = site
    page.goto(url + f"/explore/products/{market.token}")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => location.hash") == "#main"
    page.goto(url + "/explore")
    for _ in range(6):  # skip link, four navigation links, then the search box
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "q"


def test_the_home_totals_count_the_lifecycle(site: tuple[str, Market, httpx.Client]) -> None:
    _, market, http = site
    claimed = http.get(f"/trades/{market.trade['id']}", headers=auth(market.buyer)).json()["state"] == "claimed"
    # Three products, all past their window, none revoked; the cheat's lock was refunded, so the one open
    # escrow is the purchase lock until it is claimed. Sales: 0.01 ether and a resale at 0.02 ether, whose
    # royalty is 5% (the market's royalty_bps, 500) of 0.02 = 0.001 ether; the first sale, by the producer, pays none.
    assert http.get("/explore/summary.json").json() == {
        "products": 3,
        "final": 3,
        "pending": 0,
        "revoked": 0,
        "trades": 3 if claimed else 2,
        "volume_wei": str(3 * 10**16 + (10**16 if claimed else 0)),
        "royalties_wei": str(10**15),
        "open_escrows": 0 if claimed else 1,
        "esps": 2,
    }
