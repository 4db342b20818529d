"""The layout is the architecture: each folder of the package may import only the folders below it, so a
reader who knows a folder's name knows what it may use. Read from the source's import statements (not by
importing), so a lazy import inside a function counts like any other."""

import ast
from pathlib import Path

import pytest

import template

PACKAGE = Path(template.__file__).parent
LEAVES = {"errors"}  # what every part may import: the one-line error the command line prints
# Each folder and what it may import besides itself and LEAVES, lowest floor first.
MAY_IMPORT = {
    "models": set(),
    "data": set(),
    "theory": {"models"},
    "inits": {"models", "theory"},
    "monitor": {"models", "theory"},
    "run": {"schema", "config"},  # the config names the run to resume; run/ reads the schema
}


def _imported(path: Path) -> set[str]:
    """The top-level parts of the package (`theory`, `run`, `train`, ...) that a module imports."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = node.module.split(".")
            if names[0] == PACKAGE.name:
                # `from template import data, inits`: each name is a part; `from template.x import y`: x
                parts.update(names[1:2] or [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == PACKAGE.name and len(names) > 1:
                    parts.add(names[1])
    return parts


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_each_folder_imports_only_the_floors_below_it(folder):
    allowed = MAY_IMPORT[folder] | LEAVES | {folder}
    wrong = {
        f"{path.relative_to(PACKAGE.parent)} imports {PACKAGE.name}.{part}"
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for part in _imported(path) - allowed
    }
    assert not wrong, f"{folder}/ may import only {sorted(allowed)}: " + "; ".join(sorted(wrong))


def test_every_folder_of_the_package_has_its_floor():
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    commands = {"compare", "bench", "sweep"}  # at the top: they may import everything
    assert folders - commands == set(MAY_IMPORT)


def test_the_rule_sees_a_lazy_import_inside_a_function(tmp_path):
    module = tmp_path / "lazy.py"
    name = PACKAGE.name
    lines = ["def f():", f"    from {name}.monitor import callback", f"    import {name}.run.folder"]
    module.write_text("\n".join(lines) + "\n")
    assert _imported(module) == {"monitor", "run"}
