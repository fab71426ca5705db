"""Assemble a Hugging Face Space folder: `python -m build.space OUT_DIR [--model DIR]`.

The Space runs the same app.py, serving.py, coughkd_app/ and coughkd/ as the desktop build, on the runtime requirements
only (no torch): README.md with the Spaces front matter, requirements.txt, packages.txt, app.py, serving.py,
coughkd_app/, coughkd/ and assets/ (examples, model card, and the verified model from --model or assets/model).
Publish it with `hf upload USER/SPACE OUT_DIR . --repo-type space` (see build/README.md).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from coughkd.model import ModelError, read_manifest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
TRAINING_ONLY = {"torch", "torchvision", "torchaudio", "transformers", "accelerate", "nncf"}
TITLE = "coughkd"
SHORT_DESCRIPTION = "Screen a cough recording for COVID-19 (research demo)"  # Spaces allow at most 60 characters
LICENSE = "mit"
APT_PACKAGES = ["ffmpeg"]  # for Gradio's own audio conversions; coughkd decodes every format with PyAV in-process
APP_MODULES = ("app.py", "serving.py")  # the UI and how it runs as a process
PACKAGES = ("coughkd_app", "coughkd")  # what the page shows a person (quality, words, figure, report); the runtime


def requirement_name(line: str) -> str:
    """The normalised distribution name of a requirement line ("Foo_Bar[x]==1" -> "foo-bar")."""
    return re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0].lower().replace("_", "-")


def space_requirements(text: str) -> list[str]:
    """The pinned runtime requirements, without comments, options or anything only training needs."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("-") and requirement_name(line) not in TRAINING_ONLY]


def gradio_version(requirements: list[str]) -> str:
    """The exact gradio pin, which becomes the Space's sdk_version (Spaces install that gradio themselves)."""
    for line in requirements:
        found = re.fullmatch(r"gradio\s*==\s*([\w.]+)", line)
        if found:
            return found.group(1)
    raise ValueError("requirements.txt must pin gradio exactly (gradio==X.Y.Z) to set the Space's sdk_version")


def readme(sdk_version: str, manifest: dict) -> str:
    """README.md: the Spaces configuration block, then what the Space is and how to call its API."""
    return f"""---
title: {TITLE}
emoji: 🫁
colorFrom: blue
colorTo: indigo
sdk: gradio
sdk_version: {sdk_version}
python_version: "3.11"
app_file: app.py
pinned: false
license: {LICENSE}
short_description: {SHORT_DESCRIPTION}
tags:
  - audio-classification
  - openvino
  - cough
---

# coughkd — cough COVID-19 screening demo

Record two or three coughs or upload a recording; a small student model distilled from large audio models (model
`{manifest["model_id"]}`, OpenVINO on CPU) scores each detected cough and the clip as a whole.

**Research demo — not a medical device and not a diagnosis.** The model has not been clinically validated; its
card, `assets/MODEL_CARD.md`, says what it was trained on and how well it did.

## API

```python
from gradio_client import Client, handle_file

client = Client("USER/SPACE")  # this Space's id
print(client.predict(handle_file("cough.wav"), api_name="/predict"))
```

The result is a JSON object with, among others, `covid_probability`, `cough_probability`, `is_cough`, the scored
events (`[start_s, end_s, covid_probability]`) and `model`, or `{{"error": message}}` for unusable audio; the Space's
"Use via API" page shows the full schema.
"""


def assemble(out: Path, model: Path | None = None) -> Path:
    """Write the Space folder into `out` (which must be empty or absent); returns `out`.

    Raises ModelError if the model folder fails its checksum/front-end checks, ValueError for a bad requirements file.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    model = Path(model) if model is not None else ROOT / "assets" / "model"
    manifest = read_manifest(model)
    requirements = space_requirements(REQUIREMENTS.read_text())
    sdk_version = gradio_version(requirements)
    out.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for module in APP_MODULES:
        shutil.copy2(ROOT / module, out / module)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, out / package, ignore=ignore)
    shutil.copytree(ROOT / "assets", out / "assets", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "model"))
    shutil.copytree(model, out / "assets" / "model", ignore=ignore)
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (out / "packages.txt").write_text("\n".join(APT_PACKAGES) + "\n")
    (out / "README.md").write_text(readme(sdk_version, manifest))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path, help="folder to create (must be empty or absent)")
    p.add_argument("--model", type=Path, default=None, help="model folder to ship (default: assets/model)")
    args = p.parse_args(argv)
    try:
        out = assemble(args.out_dir, args.model)
    except (ModelError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Space folder ready: {out}\npublish: hf upload USER/SPACE {out} . --repo-type space")
    return 0


if __name__ == "__main__":
    sys.exit(main())
