"""The Forking page (docs/forking.md) as code: the files it shows, applied to a tree exactly as written.

A block marked `<!-- fork: <path> -->` is a new file at that path, or, where the path exists, lines
for that file: an import line joins the file's imports, and `NAME = ...` replaces the line that assigns
NAME (which must exist: a page that no longer matches the code fails here).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import docs

REPO = Path(__file__).resolve().parents[2]
FORK = re.compile(r"<!-- fork: (\S+) -->\n```python\n(.*?)```", re.S)


def blocks(readme: str | None = None) -> list[tuple[str, str]]:
    return FORK.findall(readme if readme is not None else docs.text(REPO))


def apply(root: Path) -> list[Path]:
    """Writes or edits the Forking page's fork files under `root`; returns them."""
    touched = []
    for relative, code in blocks(docs.text(root)):
        path = root / relative
        path.write_text(_edit(path.read_text(), code) if path.exists() else code)
        touched.append(path)
    return touched


def _edit(text: str, code: str) -> str:
    lines = text.splitlines()
    for line in filter(str.strip, code.splitlines()):
        if line.startswith(("from ", "import ")):
            last_import = max(i for i, old in enumerate(lines) if old.startswith(("from ", "import ")))
            lines.insert(last_import + 1, line)
        else:
            name = line.partition("=")[0].strip()
            (index,) = [i for i, old in enumerate(lines) if old.partition("=")[0].strip() == name]
            lines[index] = line
    return "\n".join(lines) + "\n"
