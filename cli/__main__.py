"""`python -m cli` runs the `aigc-market` command."""

from cli.main import run

run()
