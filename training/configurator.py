"""Plain-value configs for the entry scripts, overridden from the command line as ``--name=value``.

Each script keeps its settings as module-level constants (read top to bottom, nanoGPT-style); this turns them
into a dict and applies overrides, casting each value to the type of its default so typos fail loudly.
"""
from __future__ import annotations

import ast


def parse_overrides(defaults: dict, argv: list[str]) -> dict:
    config = dict(defaults)
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"expected --name=value, got {arg!r}; settings: {', '.join(sorted(defaults))}")
        name, raw = arg[2:].split("=", 1)
        name = name.replace("-", "_")
        if name not in config:
            raise SystemExit(f"unknown setting {name!r}; settings: {', '.join(sorted(defaults))}")
        default = config[name]
        if isinstance(default, str):
            config[name] = raw
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                raise SystemExit(f"--{name}: cannot read {raw!r} as {type(default).__name__}") from None
            if isinstance(default, bool) != isinstance(value, bool) or not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)
            ):
                raise SystemExit(f"--{name}: expected {type(default).__name__}, got {raw!r}")
            config[name] = type(default)(value)
    return config
