"""The rooms and their arrows (docs/architecture.md §2).

Imports flow one way: model <- search <- indexer <- ui; phantom stands alone; nothing imports ui. Every
import goes through the project's root `cmr_search`; only search/ touches a storage backend; no module
cycle, even one hidden in a function body; shipped code never edits sys.path.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("phantom", "model", "search", "indexer", "ui")
ALLOWED = {
    "phantom": {"phantom"},
    "model": {"model"},
    "search": {"search", "model"},
    "indexer": {"indexer", "model", "search"},
    "ui": {"ui", "indexer", "search", "model", "phantom"},
}
PHANTOM_THIRD_PARTY = {"numpy", "scipy", "pydicom"}
SHIPPED = [p for room in ROOMS for p in sorted((ROOT / room).rglob("*.py"))]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["cmr_search", *parts])


def _type_checking_only(node, parents) -> bool:
    return any(isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test) for p in parents)


def imports_of(path: Path) -> list[str]:
    """Absolute dotted names imported by a file (relative imports resolved), TYPE_CHECKING blocks left out.
    `from a.b import c` yields a.b.c when that is a module of ours, else a.b."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out, stack = [], [(tree, [])]
    while stack:
        node, parents = stack.pop()
        for child in ast.iter_child_nodes(node):
            stack.append((child, parents + [node]))
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            out += [f"{base}.{a.name}" if _is_ours(f"{base}.{a.name}") else base for a in node.names]
    return out


def _is_ours(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "cmr_search" or len(parts) < 2:
        return False
    p = ROOT.joinpath(*parts[1:])
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def room_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "cmr_search" and len(parts) > 1 else None


def test_every_import_of_ours_goes_through_the_root():
    bad = [f"{p.relative_to(ROOT)} imports {name}" for p in SHIPPED for name in imports_of(p)
           if name.split(".")[0] in ROOMS]
    assert not bad, "import the project as cmr_search.<room>:\n" + "\n".join(bad)


def test_packages_import_only_downstream_layers():
    bad = []
    for path in SHIPPED:
        room = path.relative_to(ROOT).parts[0]
        wrong = {room_of(n) for n in imports_of(path)} - {None} - ALLOWED[room]
        if wrong:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_nothing_outside_ui_imports_ui():
    files = [p for p in SHIPPED if p.relative_to(ROOT).parts[0] != "ui"]
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in files for n in imports_of(p) if room_of(n) == "ui"]
    assert not bad, "no room imports ui:\n" + "\n".join(bad)


def test_only_search_touches_a_storage_backend():
    bad = [f"{p.relative_to(ROOT)} imports {n}" for p in SHIPPED if p.relative_to(ROOT).parts[0] != "search"
           for n in imports_of(p) if n.startswith("cmr_search.search.backends")]
    assert not bad, "go through search.Store, not a backend:\n" + "\n".join(bad)


def test_no_import_cycle_between_modules():
    graph = {module_name(p): {n for n in imports_of(p) if _is_ours(n)} for p in SHIPPED}
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            node, it = work[-1]
            child = next(it, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        w = stack.pop(); on.discard(w); comp.add(w)
                        if w == node:
                            break
                    out.append(comp)
            elif child not in index:
                index[child] = low[child] = counter[0]; counter[0] += 1
                stack.append(child); on.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on:
                low[node] = min(low[node], index[child])
    return out


def test_cycle_finder_finds_a_cycle():
    comps = strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert {"a", "b", "c"} in comps and {"d"} in comps


def test_shipped_code_never_edits_sys_path():
    bad = [str(p.relative_to(ROOT)) for p in SHIPPED if "sys.path" in p.read_text()]
    assert not bad, "install the package instead of editing sys.path:\n" + "\n".join(bad)


def test_phantom_uses_only_numpy_scipy_pydicom():
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for path in (ROOT / "phantom").rglob("*.py"):
        tops = {n.split(".")[0] for n in imports_of(path)} - {"cmr_search"}
        extra = tops - stdlib - PHANTOM_THIRD_PARTY - {"__future__"}
        if extra:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not bad, "phantom may import only numpy, scipy, pydicom:\n" + "\n".join(bad)
