"""REST API (FastAPI) over the market: accounts, ESPs, tasks, products, trades, simulations."""
