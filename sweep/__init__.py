"""Sweeps: a grid or a random search of cells (`simulate`, `offload compare`, `offload train`,
`reproduce`) run as Ray tasks or in a local process pool, into one tidy table (docs/scale.md)."""
