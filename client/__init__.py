"""A typed Python client of the market's REST API, for API-key and self-custodied accounts (docs/client.md)."""

from client.market_client import ApiClientError, ChainInfo, EspJob, JobAction, MarketClient

__all__ = ["ApiClientError", "ChainInfo", "EspJob", "JobAction", "MarketClient"]
