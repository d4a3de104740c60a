"""The import graph of the seqvae package, read from its source with ast (nothing is run).

    python docs/import_graph.py            # prints the layers and any circle, draws docs/architecture.png

tests/test_architecture.py uses the same functions to check that imports flow one way.
Every import counts: at the top of a module, inside a function, or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seqvae"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """seqvae/model/vae.py -> seqvae.model.vae; a package's __init__.py -> the package."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imported(tree: ast.AST, module: str, is_package: bool,
              modules: set[str]) -> Iterable[str]:
    """Modules of the package an ast imports, relative imports resolved against module.
    ``from . import jsonio`` imports seqvae.jsonio; ``from .x import y`` imports seqvae.x."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            submodules = [f"{stem}.{alias.name}" for alias in node.names
                          if f"{stem}.{alias.name}" in modules]
            yield from submodules or [stem]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports."""
    sources = {module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = set(_imported(tree, name, path.name == "__init__.py", set(sources)))
        graph[name] = {m for m in found & set(sources) if m != name}
    return graph


def without_package_faces(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the arrows into a package's own __init__ from inside the package
    (``from seqvae.search import objectives`` inside seqvae.search reads the __init__, which
    only hands names on): the circles that remain are real ones."""
    return {m: {t for t in targets if not (m.startswith(t + ".") and t != m)}
            for m, targets in graph.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(1000, 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module start imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """A floor per module: 0 for one that imports nothing of the package, else one above
    the highest it imports (circles, if any, share a floor)."""
    floor: dict[str, int] = {}

    def height(node: str, path: tuple[str, ...]) -> int:
        if node in floor:
            return floor[node]
        below = [height(t, path + (node,)) for t in graph[node] if t not in path]
        floor[node] = 1 + max(below) if below else 0
        return floor[node]

    for node in graph:
        height(node, ())
    return floor


GROUPS = {  # the layers of docs/architecture.md, top to bottom, by module prefix
    "command line": ["seqvae.cli", "seqvae.__main__"],
    "search and metrics": ["seqvae.search", "seqvae.metrics"],
    "training": ["seqvae.trainer", "seqvae.callbacks", "seqvae.evaluation", "seqvae.prepare"],
    "user-facing model": ["seqvae.trained", "seqvae.generate"],
    "domains": ["seqvae.domains"],
    "checkpoints and data": ["seqvae.checkpoint", "seqvae.data", "seqvae.cache",
                             "seqvae.tokenizers", "seqvae.pretrained"],
    "model core": ["seqvae.model"],
    "chemistry": ["seqvae.chem", "seqvae.search.objectives", "seqvae.metrics._features"],
    "foundations": ["seqvae"],
}


def group_of(module: str) -> str:
    """The layer a module belongs to: that of the longest prefix that fits it."""
    best, length = "foundations", 0
    for group, prefixes in GROUPS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = group, len(prefix)
    return best


def draw(graph: dict[str, set[str]], path: Path) -> Path:
    """The layers as rows of boxes, modules inside, and the arrows between layers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(GROUPS)
    members = {g: sorted(m.removeprefix("seqvae.") for m in graph if group_of(m) == g)
               for g in groups}
    between: dict[tuple[str, str], int] = {}
    for source, targets in graph.items():
        for target in targets:
            a, b = group_of(source), group_of(target)
            if a != b:
                between[(a, b)] = between.get((a, b), 0) + 1
    fig, ax = plt.subplots(figsize=(11, 10))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, len(groups) * 1.4)
    ax.axis("off")
    y_of = {}
    for row, group in enumerate(groups):
        y = (len(groups) - row - 1) * 1.4 + 0.2
        y_of[group] = y
        ax.add_patch(plt.Rectangle((2.2, y), 7.6, 1.0, fill=True, alpha=0.15, color=f"C{row}"))
        ax.text(2.0, y + 0.5, group, ha="right", va="center", fontsize=11, weight="bold")
        names = members[group]
        text = ", ".join(names)
        lines, line = [], ""
        for name in names:
            piece = (", " if line else "") + name
            if len(line) + len(piece) > 95:
                lines.append(line + ",")
                line = name
            else:
                line += piece
        lines.append(line)
        ax.text(2.35, y + 0.5, "\n".join(lines) if text else "(none)", va="center", fontsize=7.5,
                family="monospace")
    for (a, b), n in sorted(between.items()):
        upward = y_of[b] > y_of[a]
        x = 1.0 + 0.08 * groups.index(b) + (0.6 if upward else 0)
        ax.annotate("", xy=(x, y_of[b] + 0.5), xytext=(x, y_of[a] + 0.5),
                    arrowprops=dict(arrowstyle="->", color="red" if upward else "grey",
                                    lw=0.8, alpha=0.8))
    found = circles(without_package_faces(graph))
    title = ("seqvae: layers and imports (arrows point to what is imported; red would run "
             f"upwards). Circles: {len(found)}")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    graph = import_graph()
    floor = layers(graph)
    for group in GROUPS:
        names = sorted((m for m in graph if group_of(m) == group), key=lambda m: (-floor[m], m))
        print(f"{group}: " + ", ".join(f"{m.removeprefix('seqvae.')} ({floor[m]})" for m in names))
    found = circles(without_package_faces(graph))
    print("circles: " + ("; ".join(" <-> ".join(c) for c in found) if found else "none"))
    print(f"picture: {draw(graph, ROOT / 'docs' / 'architecture.png')}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
