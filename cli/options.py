"""Options shared by the commands: the chain connection, and options derived from a config dataclass."""

from __future__ import annotations

import inspect
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer._click.core import ParameterSource  # Typer vendors click

from cli.errors import UserError
from market.chain.connection import Chain
from market.chain.errors import RpcUnreachableError
from market.fields import FieldSpec, field_specs

RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="JSON-RPC URL of an EVM node; default: a fresh embedded eth-tester chain.")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--private-key",
        envvar="AIGC_MARKET_PRIVATE_KEY",
        help="Key that pays for deployment on --rpc chains (default: anvil's first dev account).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="A TOML file of config fields (or a run's config.json); options given override it.", dir_okay=False
    ),
]


def connect(rpc: str | None, private_key: str | None) -> Chain:
    if rpc is None:
        return Chain.embedded()
    try:
        return Chain.connect(rpc, private_key)
    except RpcUnreachableError as exc:
        raise UserError(str(exc)) from exc
    except ValueError as exc:  # a malformed private key
        raise UserError(f"invalid --private-key: {exc}") from exc


# -- options derived from a config dataclass ----------------------------------------------------


def option_name(spec: FieldSpec, names: dict[str, str]) -> str:
    return names.get(spec.name, "--" + spec.name.replace("_", "-"))


def option_default(spec: FieldSpec) -> Any:
    """The option's default: the field's, with a tuple of enum values written comma-separated."""
    if spec.is_sequence:
        return ",".join(str(item) for item in spec.default)
    return spec.default


def field_option(spec: FieldSpec, names: dict[str, str]) -> inspect.Parameter:
    """One keyword parameter, annotated for Typer, whose default, bounds and help are the field's."""
    help_text = spec.doc
    annotation: Any = spec.type
    if spec.is_sequence:  # a tuple of enum values: one comma-separated option
        annotation = str
        enum = spec.enum
        assert enum is not None, f"{spec.name}: only tuples of enum values become options"
        help_text += f" Comma-separated, from: {', '.join(str(m.value) for m in enum)}."
    elif spec.choices is not None:
        annotation = Literal[spec.choices]
    option = typer.Option(option_name(spec, names), help=help_text, min=spec.ge, max=spec.le)
    return inspect.Parameter(
        spec.name, inspect.Parameter.KEYWORD_ONLY, default=option_default(spec), annotation=Annotated[annotation, option]
    )


def with_config_options(cls: type, names: dict[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per field of the config dataclass `cls` (through its `**fields`).

    The command's own parameters stay as they are; its `**fields` receive every field's option by the
    field's name, with the field's default, bounds and docstring (`names` renames an option, e.g.
    {"esp_profiles": "--profiles"}). `config_values` turns them back into field values.
    """
    names = names or {}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fields = [field_option(spec, names) for spec in field_specs(cls)]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + fields
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return decorate


def config_values(cls: type, ctx: typer.Context, options: dict[str, Any], config_file: Path | None) -> dict[str, Any]:
    """The field values of a run: those of `config_file`, overridden by every option given on the command line."""
    values = read_config_file(config_file) if config_file is not None else {}
    for spec in field_specs(cls):
        if ctx.get_parameter_source(spec.name) in (None, ParameterSource.DEFAULT):
            continue
        value = options[spec.name]
        values[spec.name] = tuple(item.strip() for item in value.split(",")) if spec.is_sequence else value
    return values


def read_config_file(path: Path) -> dict[str, Any]:
    """The fields of a TOML file (top-level keys), or of a JSON object (a `.json` file, e.g. a run's config.json)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read --config {path}: {exc.strerror or exc}") from exc
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--config {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from exc
    if not isinstance(values, dict):
        raise UserError(f"--config {path} must hold a table of config fields")
    return dict(values)
