"""Draw dlsp's package-level import graph, layer by layer, as a PNG (the picture in ARCHITECTURE.md).

Run: `.venv/bin/python benchmarks/import_graph.py` (a second; writes docs/architecture.png, `--out` for elsewhere).

Nodes are dlsp's subpackages (the top-level modules config, device, errors, fileio, paths and progress form
`core`, drawn as the bar at the bottom that every package stands on: its edges are left out). An edge A -> B
means a module of A imports a module of B, found by the walker of tests/test_import_cycles.py: solid when the
import runs when A is imported (module level), dashed when every such import sits inside a function (it runs
when called; the commands import their work this way so `dlsp --help` stays fast). Its width grows with the
number of importing module pairs. Packages sit in the rows of LAYERS; an edge that points up a row is red: it
goes against the layering and is worth a look. A package missing from LAYERS lands in the tasks row, with a
warning: add it where it belongs.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
CORE_LABEL = "core"


def _walker():
    """tests/test_import_cycles.py, loaded by path (it is not a package): the import walker and the layers."""
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tests" / "test_import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WALKER = _walker()
LAYERS, CORE, package_of = WALKER.LAYERS, WALKER.CORE, WALKER.package_of


def package_graph(src: Path) -> tuple[Counter, Counter, dict[str, tuple[int, int]]]:
    """(module-level edges, all edges) as Counters of (package, package) -> importing module pairs, and
    package -> (modules, lines)."""
    at_import, every = Counter(), Counter()
    for everywhere, edges in ((False, at_import), (True, every)):
        for module, targets in WALKER.import_graph(src, "dlsp", everywhere).items():
            for target in targets:
                edges[(package_of(module), package_of(target))] += 1
    sizes: dict[str, list[int]] = {}
    for module, path in WALKER._module_names(src, "dlsp").items():
        size = sizes.setdefault(package_of(module) or "core", [0, 0])
        size[0] += 1
        size[1] += path.read_text(encoding="utf-8").count("\n")
    keep = lambda edges: Counter({(a, b): n for (a, b), n in edges.items() if a and b and a != b})  # noqa: E731
    return keep(at_import), keep(every), {name: (s[0], s[1]) for name, s in sizes.items()}


def positions(packages: set[str]) -> tuple[dict[str, tuple[float, float]], list[tuple[str, float]]]:
    """Package -> (x, y) centre, and the bands' (label, y); x in [0, 1], one row per layer."""
    layers = [(label, list(names)) for label, names in LAYERS]
    placed = {name for _, names in layers for name in names}
    for name in sorted(packages - placed - {"core"}):
        print(f"warning: package {name!r} is not in LAYERS; drawn in the tasks row", file=sys.stderr)
        next(names for label, names in layers if label == "tasks").append(name)
    where, bands = {}, []
    for row, (label, names) in enumerate(layers):
        y = len(layers) - row
        bands.append((label, y))
        names = [n for n in names if n in packages]
        for i, name in enumerate(names):
            where[name] = ((i + 0.5) / len(names), y)
    return where, bands


def draw(out: Path, src: Path) -> Path:
    at_import, every, sizes = package_graph(src)
    packages = {p for edge in every for p in edge} | set(sizes)
    where, bands = positions(packages)
    fig, ax = plt.subplots(figsize=(13, 8.5))
    ax.set_xlim(-0.22, 1.02)
    ax.set_ylim(-0.5, len(LAYERS) + 0.6)
    ax.axis("off")
    for i, (label, y) in enumerate(bands):
        ax.axhspan(y - 0.45, y + 0.45, color="#f3f5f8" if i % 2 else "#e9eef5", zorder=0)
        ax.text(-0.2, y, label, va="center", ha="left", fontsize=11, color="#445", style="italic")
    box_w, box_h = 0.15, 0.42
    heaviest = max(every.values())
    for (a, b), count in sorted(every.items(), key=lambda item: item[1]):
        if b == "core" or a == "core":
            continue
        (xa, ya), (xb, yb) = where[a], where[b]
        if ya == yb:  # side to side, arcing so that the two directions between neighbours stay apart
            side = box_w / 2 if xb > xa else -box_w / 2
            start, end, style = (xa + side, ya), (xb - side, yb), "arc3,rad=0.3"
        else:  # bottom to top, or top to bottom for an edge that points up
            half = box_h / 2 if yb < ya else -box_h / 2
            start, end, style = (xa, ya - half), (xb, yb + half), "arc3,rad=0.06"
        upward = yb > ya
        arrow = FancyArrowPatch(
            start, end, connectionstyle=style, arrowstyle="-|>", mutation_scale=12,
            linewidth=0.8 + 3.2 * math.log1p(count) / math.log1p(heaviest),
            linestyle="-" if (a, b) in at_import else (0, (4, 3)),
            color="#c62828" if upward else "#37474f", alpha=0.9 if upward else 0.55, zorder=1, shrinkA=2, shrinkB=2)
        ax.add_patch(arrow)
    for name, (x, y) in where.items():
        modules, lines = sizes.get(name, (0, 0))
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.01",
                                    facecolor="white", edgecolor="#1f4e79", linewidth=1.6, zorder=2))
        ax.text(x, y + 0.06, name, ha="center", va="center", fontsize=13, weight="bold", color="#1f4e79", zorder=3)
        ax.text(x, y - 0.1, f"{modules} module{'s' * (modules != 1)}, {lines / 1000:.1f}k lines", ha="center",
                va="center", fontsize=8.5, color="#555", zorder=3)
    modules, lines = sizes["core"]
    ax.axhspan(-0.45, 0.45, color="#f3f5f8" if len(bands) % 2 else "#e9eef5", zorder=0)
    ax.text(-0.2, 0, CORE_LABEL, va="center", ha="left", fontsize=11, color="#445", style="italic")
    ax.add_patch(FancyBboxPatch((0.0, -box_h / 2), 1.0, box_h, boxstyle="round,pad=0.01", facecolor="#1f4e79",
                                edgecolor="none", zorder=2))
    ax.text(0.5, 0, f"{', '.join(CORE)}  ({modules} modules, {lines / 1000:.1f}k lines)\nevery package imports "
                    "these; their edges are not drawn", ha="center", va="center", fontsize=10.5, color="white",
            zorder=3)
    ax.text(-0.2, len(LAYERS) + 0.5,
            "dlsp packages and their imports (A -> B: A imports B).  solid: at import time;  dashed: only inside "
            "functions;  red: points up a layer;  width: importing module pairs",
            fontsize=9.5, color="#333", va="center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "architecture.png")
    args = parser.parse_args(argv)
    print(f"wrote {draw(args.out, ROOT / 'src' / 'dlsp')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
