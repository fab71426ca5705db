"""The Hugging Face Space folder: valid Spaces metadata, no training stack, and it runs from its own requirements.

The slow test installs the Space's requirements.txt into a fresh virtual environment (no system site-packages, so a
missing requirement shows), starts its app.py from the Space folder as Spaces do (no arguments, address and port from
GRADIO_SERVER_NAME/PORT) and calls it with gradio_client; the install and
start-up times go to reports/build/space.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from build import smoke, space
from serving import free_port
from tests.test_build_exe import model_to_ship

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1800
REPORT = REPO / "reports" / "build" / "space.json"  # venv install and start-up times, kept by CI


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return space.assemble(tmp_path_factory.mktemp("space") / "coughkd", model_to_ship(tmp_path_factory))


def front_matter(readme: str) -> dict:
    """The YAML block between the leading '---' lines, which Spaces read their configuration from."""
    _, block, _ = readme.split("---\n", 2)
    return yaml.safe_load(block)


def test_readme_has_spaces_configuration(space_dir: Path) -> None:
    config = front_matter((space_dir / "README.md").read_text())
    assert config["sdk"] == "gradio"
    assert f"gradio=={config['sdk_version']}" in (REPO / "requirements.txt").read_text().split()
    assert (space_dir / config["app_file"]).is_file() and config["app_file"] == "app.py"
    assert config["license"]
    assert 0 < len(config["short_description"]) <= 60


def test_requirements_are_the_runtime_ones_without_training(space_dir: Path) -> None:
    requirements = (space_dir / "requirements.txt").read_text().split()
    names = {space.requirement_name(line) for line in requirements}
    assert {"numpy", "av", "soxr", "openvino", "gradio", "matplotlib"} <= names
    assert not names & space.TRAINING_ONLY
    assert all("==" in line for line in requirements)


def test_space_requirements_drop_training_packages_comments_and_options() -> None:
    text = "# app\n-r base.txt\nnumpy==2.4.6  # arrays\ntorch==2.13.0\nTransformers==5.24.0\n\ngradio==6.31.0\n"
    assert space.space_requirements(text) == ["numpy==2.4.6", "gradio==6.31.0"]
    assert space.gradio_version(space.space_requirements(text)) == "6.31.0"
    with pytest.raises(ValueError, match="pin gradio"):
        space.gradio_version(["gradio>=6"])


def test_folder_holds_the_app_runtime_and_a_verified_model(space_dir: Path) -> None:
    assert (space_dir / "app.py").is_file() and (space_dir / "serving.py").is_file()
    assert (space_dir / "coughkd" / "__init__.py").is_file() and (space_dir / "coughkd" / "privacy.py").is_file()
    assert not list(space_dir.rglob("__pycache__"))
    assert sorted(p.name for p in (space_dir / "assets" / "examples").glob("*.mp3"))
    space.read_manifest(space_dir / "assets" / "model")


def test_refuses_a_damaged_model(tmp_path: Path, space_dir: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for file in (space_dir / "assets" / "model").iterdir():
        (model / file.name).write_bytes(file.read_bytes())
    with (model / "student_int8.bin").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(space.ModelError, match="damaged"):
        space.assemble(tmp_path / "out", model)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


@pytest.mark.slow
def test_space_runs_in_a_fresh_venv_from_its_requirements(space_dir: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv_python(venv))
    start = time.monotonic()
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], check=False,
                             cwd=space_dir, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    install_s = time.monotonic() - start
    lean = subprocess.run([python, "-c", ("import importlib.util as u; print(u.find_spec('torch'), "
                                          "u.find_spec('transformers'))")],
                          check=False, capture_output=True, text=True, timeout=60)
    assert lean.stdout.split() == ["None", "None"], lean.stdout + lean.stderr

    # As on Spaces: no arguments; they set where to listen. BROWSER=true makes the app's "open a browser" a no-op.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(free_port("127.0.0.1")), BROWSER="true")
    with smoke.serve([python, "app.py"], tmp_path / "space.log", cwd=space_dir, env=env) as server:
        assert server.url.endswith(f":{env['GRADIO_SERVER_PORT']}")
        measured = {"venv_install_s": round(install_s, 1), "startup_s": round(server.startup_s, 2)}
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(measured, indent=2))
        print(f"\nSpace in a fresh venv: {measured}")
        result = smoke.predict(server.url, space_dir / smoke.EXAMPLE)
    assert "error" not in result, result
    assert result["filename"] == smoke.EXAMPLE.name
    assert result["covid_probability"] is None if not result["is_cough"] else 0.0 <= result["covid_probability"] <= 1.0
    assert result["events"]
