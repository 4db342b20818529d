"""The README and the reference pages under docs/ that it links: what every check of the documentation
reads (runnable blocks, fork blocks, quoted tables), so a section moved between pages stays checked."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pages(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def text(root: Path = REPO) -> str:
    return "\n\n".join(page.read_text() for page in pages(root))
