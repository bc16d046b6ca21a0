"""The `aigc-market` command: the layer above everything (`docs/architecture.md`).

One module per command group (`chain`, `demo`, `simulate`, `offload`, `reputation`, `serve`), one
error policy (`errors`), one console, shared plot and device helpers; `main` assembles the groups
explicitly. Nothing below this package imports it.
"""
