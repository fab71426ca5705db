"""Plain-value configs for the entry scripts, nanoGPT-style, overridden from the command line as ``--name=value``.

Each script keeps its settings as plain module globals in a config block at the top (read top to bottom); its
settings are exactly its lower-case globals of a simple type (str, int, float, bool). A config file (an argument
without ``--``, e.g. ``config/ablation.py``) holds plain assignments to some of them, applied in order with the
``--name=value`` overrides. Every value is cast to the type of its default, so typos fail loudly.
"""
from __future__ import annotations

import ast
from pathlib import Path

SIMPLE = (str, int, float, bool)


def config_keys(namespace: dict) -> list[str]:
    """The settings of a script whose globals are ``namespace``: its lower-case globals of a simple type."""
    return [k for k, v in namespace.items() if k.islower() and not k.startswith("_") and type(v) in SIMPLE]


def configure(namespace: dict, argv: list[str]) -> dict:
    """{setting: value} of the script whose globals are ``namespace``, after the config files and overrides."""
    return parse_overrides({k: namespace[k] for k in config_keys(namespace)}, argv)


def parse_overrides(defaults: dict, argv: list[str]) -> dict:
    config = dict(defaults)
    for arg in argv:
        if not arg.startswith("--") and arg.endswith(".py"):
            values: dict = {}
            exec(Path(arg).read_text(), {}, values)  # a config file: plain assignments, as nanoGPT reads them
            pairs = [(k, v if isinstance(v, str) else repr(v)) for k, v in values.items() if not k.startswith("_")]
        elif arg.startswith("--") and "=" in arg:
            pairs = [tuple(arg[2:].split("=", 1))]
        else:
            raise SystemExit(f"expected --name=value or a config file, got {arg!r}; settings: "
                             f"{', '.join(sorted(defaults))}")
        for name, raw in pairs:
            name = name.replace("-", "_")
            if name not in config:
                raise SystemExit(f"unknown setting {name!r}; settings: {', '.join(sorted(defaults))}")
            config[name] = _cast(name, raw, defaults[name])
    return config


def _cast(name: str, raw: str, default: object) -> object:
    if isinstance(default, str):
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise SystemExit(f"--{name}: cannot read {raw!r} as {type(default).__name__}") from None
    if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)) and not (
        isinstance(default, float) and isinstance(value, int)
    ):
        raise SystemExit(f"--{name}: expected {type(default).__name__}, got {raw!r}")
    return type(default)(value)
