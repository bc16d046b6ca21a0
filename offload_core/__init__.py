"""Batched edge offloading and caching core (PyTorch): cost model, caching policies, schedulers.

Imports neither `market`, `api` nor `reputation` (docs/architecture.md).
"""
