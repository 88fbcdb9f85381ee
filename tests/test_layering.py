"""Imports flow one way: model <- search <- indexer <- ui; phantom stands alone (architecture.md §2)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = {"phantom", "model", "search", "indexer", "ui"}
ALLOWED = {
    "phantom": {"phantom"},
    "model": {"model"},
    "search": {"search", "model"},
    "indexer": {"indexer", "model", "search"},
    "ui": OURS,
}
PHANTOM_THIRD_PARTY = {"numpy", "scipy", "pydicom"}


def imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_packages_import_only_downstream_layers():
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in (ROOT / pkg).rglob("*.py"):
            wrong = (imported_top_levels(path) & OURS) - allowed
            if wrong:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_phantom_uses_only_numpy_scipy_pydicom():
    import sys
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for path in (ROOT / "phantom").rglob("*.py"):
        extra = imported_top_levels(path) - stdlib - PHANTOM_THIRD_PARTY - {"phantom", "__future__"}
        if extra:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not bad, "phantom may import only numpy, scipy, pydicom:\n" + "\n".join(bad)
