"""The layout: entry scripts in training/ configure and call the library, never each other (except reproduce, which
runs the steps), and each takes its settings from its config block."""
from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from training.lib.configurator import config_keys

REPO = Path(__file__).resolve().parents[1]
TRAINING = REPO / "training"
SCRIPTS = sorted(p.stem for p in TRAINING.glob("*.py") if p.stem != "__init__")
STEPS = ("prepare", "teacher", "distill", "gate", "export", "evaluate", "reproduce")  # each has run(...)


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (imports inside functions count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_entry_script_imports_another(script: str) -> None:
    others = {f"training.{s}" for s in SCRIPTS if s != script}
    found = imported(TRAINING / f"{script}.py") & others
    if script == "reproduce":
        found -= {f"training.{s}" for s in STEPS}
    assert not found, f"training/{script}.py imports {sorted(found)}"


def test_the_library_imports_no_entry_script() -> None:
    scripts = {f"training.{s}" for s in SCRIPTS}
    for path in [*TRAINING.glob("lib/*.py"), *TRAINING.glob("models/*.py"), *TRAINING.parent.glob("bench/*.py")]:
        assert not imported(path) & scripts, f"{path} imports an entry script"


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_with_its_settings_as_typed_arguments(step: str) -> None:
    module = importlib.import_module(f"training.{step}")
    keys = config_keys(vars(module))
    parameters = inspect.signature(module.run).parameters
    assert keys and set(keys) <= set(parameters), f"{step}.run lacks {set(keys) - set(parameters)}"
    for key in keys:
        parameter = parameters[key]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == getattr(module, key)


def test_a_config_file_and_overrides_apply_in_order(tmp_path: Path) -> None:
    from training.lib.configurator import parse_overrides

    config = tmp_path / "experiment.py"
    config.write_text("epochs = 3\nname = 'x'  # a comment\n")
    assert parse_overrides({"epochs": 30, "name": ""}, [str(config), "--epochs=4"]) == {"epochs": 4, "name": "x"}
    with pytest.raises(SystemExit, match="unknown setting"):
        parse_overrides({"name": ""}, [str(config)])


def test_ruff_passes_on_the_whole_tree() -> None:
    """The linter configured in pyproject.toml, as part of the test command, so CI runs it with everything else."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
