"""`make rename NAME=<python_identifier>`: make this starter your project.

Renames the package folder and every place that names the package as code — imports, dotted paths,
`python -m`, file paths, pyproject's name, the W&B project — and leaves the word "template" in prose
alone. Refuses a name that is not an identifier, is a keyword, or is already importable (it would
shadow or be shadowed by that module), before changing anything.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from template.errors import UsageError

OLD = Path(__file__).resolve().parent.name  # the package as named now: a renamed copy can rename again
ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".md", ".cfg", ".txt"}
EXTRA_FILES = {"Makefile", ".ci/run"}

# The package named as code, never as a word in a sentence.
PATTERNS = [
    (re.compile(rf"\b(import|from) {OLD}\b"), r"\1 {new}"),
    (re.compile(rf"(?<![\w/-]){OLD}(?=\.[A-Za-z_])"), "{new}"),  # template.inits, "template.module"
    (re.compile(rf"(?<![\w/-]){OLD}/"), "{new}/"),  # template/config.py
    (re.compile(rf"-m {OLD}\b"), "-m {new}"),
    (re.compile(rf"""(["']-m["'],\s*["']){OLD}(?=["'])"""), r"\1{new}"),  # [sys.executable, "-m", "template"]
    (re.compile(rf'^name = "{OLD}"$', re.M), 'name = "{new}"'),  # pyproject
    (re.compile(rf'"{OLD}\*"'), '"{new}*"'),  # setuptools package discovery
    (re.compile(rf"^(\s*project:) {OLD}\b", re.M), r"\1 {new}"),  # the W&B project
]


def check_name(name: str, root: Path = ROOT) -> None:
    if not name.isidentifier() or not name.isascii():
        raise UsageError(
            f"NAME={name!r} is not a Python identifier; use letters, digits and _, not starting with a digit"
        )
    if keyword.iskeyword(name) or name != name.lower():
        raise UsageError(f"NAME={name!r} is a keyword or not lower case; choose a lower-case identifier")
    if name == OLD:
        raise UsageError(f"NAME={name!r} is the current name; choose another")
    if (root / name).exists():
        raise UsageError(f"NAME={name!r} is taken: {root / name} exists")
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise UsageError(f"NAME={name!r} is taken: a module of that name is already importable")


def project_files(root: Path) -> list[str]:
    """The files git tracks or would track (not ignored by .gitignore), relative to `root`: the project,
    not its venv, runs or caches. In a tree without `.git` (an unpacked archive) git still judges what
    .gitignore ignores, through an empty repository made for the purpose with `root` as its work tree."""
    if shutil.which("git") is None:
        raise UsageError("make rename needs git (to read .gitignore); install it and run again")
    listing = ["ls-files", "--cached", "--others", "--exclude-standard"]
    if (root / ".git").exists():
        return _git(root, *listing)
    with tempfile.TemporaryDirectory() as empty:
        _git(Path(empty), "init", "-q")
        return _git(root, f"--git-dir={empty}/.git", f"--work-tree={root}", *listing)


def _git(cwd: Path, *arguments: str) -> list[str]:
    return subprocess.run(
        ["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.split()


def files_to_edit(root: Path) -> list[Path]:
    return [root / f for f in project_files(root) if Path(f).suffix in SUFFIXES or f in EXTRA_FILES]


def rename_text(text: str, new: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement.replace("{new}", new), text)
    return text


def rename(new: str, root: Path = ROOT) -> list[Path]:
    """Rewrite the files, then move the package folder; returns the files that changed."""
    check_name(new, root)
    changed = []
    for path in files_to_edit(root):
        if not path.is_file():
            continue
        text = path.read_text()
        renamed = rename_text(text, new)
        if renamed != text:
            path.write_text(renamed)
            changed.append(path)
    (root / OLD).rename(root / new)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("error: usage: make rename NAME=<python_identifier>", file=sys.stderr)
        return 2
    try:
        changed = rename(argv[0])
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"renamed the package to {argv[0]}/ and rewrote {len(changed)} files; run: make install && make test"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
