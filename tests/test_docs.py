"""The committed documents' relative links and pictures point at files that are committed too: a link to a file that
a run writes but git ignores (reports/, runs/) is broken wherever the document is read, on GitHub or on the Space."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "build" / "README.md", *sorted((ROOT / "assets").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(document: Path) -> list[str]:
    """Targets of the document's markdown links and images, without web links and in-page anchors."""
    targets = (m.group(1).split("#")[0] for m in LINK.finditer(document.read_text()))
    return [t for t in targets if t and not re.match(r"[a-z]+:", t)]


def ignored_by_git(path: Path) -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False  # a plain copy of the tree: only the files themselves can be checked
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT).returncode == 0


def test_the_link_pattern_finds_images_and_links(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text("![a](pic.png) see [card](assets/MODEL_CARD.md#results), [web](https://example.org), "
                        "[top](#top)")
    assert relative_links(document) == ["pic.png", "assets/MODEL_CARD.md"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_committed_files(document: Path) -> None:
    for target in relative_links(document):
        path = (document.parent / target).resolve()
        assert path.is_file(), f"{document.name} links {target}, which does not exist"
        assert ROOT in path.parents, f"{document.name} links {target}, outside the repository"
        assert not ignored_by_git(path), f"{document.name} links {target}, which git ignores (a run's output)"
