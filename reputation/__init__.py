"""Subjective-logic reputation of ESPs: opinions, multi-weight subjective logic (MWSL), selection.

Imports neither `market`, `api` nor `offload_core` (DESIGN section 2).
"""
