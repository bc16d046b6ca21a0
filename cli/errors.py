"""The error policy of every command: one line on stderr, exit code 2 for the caller's mistakes.

A bad argument, an unreachable node, a refused configuration: `UserError` or typer's own usage
errors, exit 2. A failure of the chain (a revert the command did not expect): exit 1. No traceback
reaches the user.
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from market.chain.errors import ChainError


class UserError(Exception):
    """A mistake of the caller's: printed as one line, exit code 2."""


def invoke(app: typer.Typer, argv: list[str] | None) -> int:
    """Run `app` on `argv` and turn every error into one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="aigc-market", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return 2
    except click.UsageError as exc:
        print(f"aigc-market: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"aigc-market: error: {exc}", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        print(f"aigc-market: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except ChainError as exc:
        print(f"aigc-market: error: {exc}", file=sys.stderr)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        print("aigc-market: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0
