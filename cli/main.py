"""The `aigc-market` application: every command group, assembled here and nowhere else."""

from __future__ import annotations

import sys

import typer

from cli import chain, demo, esp, offload, reproduce, reputation, serve, simulate, sweep
from cli.errors import invoke

app = typer.Typer(
    name="aigc-market",
    help="Blockchain-backed marketplace and lifecycle manager for edge AIGC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(chain.app, name="chain")
app.add_typer(offload.app, name="offload")
app.add_typer(reputation.app, name="reputation")
app.add_typer(esp.app, name="esp")
app.command("demo")(demo.demo)
app.command("simulate")(simulate.simulate)
app.command("serve")(serve.serve)
app.command("reproduce")(reproduce.reproduce)
app.command("sweep")(sweep.sweep)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the application and turns errors into one line and an exit code."""
    return invoke(app, argv)


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
