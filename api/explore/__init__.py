"""The market explorer: server-rendered pages under /explore (docs/explorer.md).

Every object of the market has a page (product, ESP, address, escrow lock, simulation run), every
hash and address links to its page, lists export as CSV, and the live parts (an escrow's state and
countdown, a run's progress) poll a JSON twin. The pages read the API's database (the indexed
state); the few chain constants they show (challenge window, royalty) are read once and kept.
`mount_explorer(app)` adds the routes and the static files (JS and CSS vendored from npm,
`tools/vendor_js.py`) to the API app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.explore.routes import router

STATIC_DIR = Path(__file__).parent / "static"


def mount_explorer(app: FastAPI) -> None:
    """Serve the explorer's pages and its static files (/explore/static) from `app`."""
    app.include_router(router)
    app.mount("/explore/static", StaticFiles(directory=STATIC_DIR), name="explore-static")


__all__ = ["STATIC_DIR", "mount_explorer", "router"]
