"""A run's graph as inline SVG, laid out in layers on the server (no JavaScript library).

Each step sits one layer below the deepest of its parents; steps of a layer sit side by
side. A run records the flow's graph, so a step no task reached yet is drawn too ("waiting");
for a run that did not record it (an older Flow's), a step whose parents are not known yet
goes below the step reached before it. Edges back up the graph (a recursive switch) are
drawn too.
"""

from __future__ import annotations

import html
from typing import Any

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 180, 54, 36, 46, 12


def layers(steps: list[str], edges: dict[str, list[str]]) -> dict[str, int]:
    parents: dict[str, list[str]] = {s: [] for s in steps}
    for parent, children in edges.items():
        for child in children:
            if child in parents and parent in parents:
                parents[child].append(parent)
    layer: dict[str, int] = {}
    for i, step in enumerate(steps):  # steps come in the order they were reached
        known = [layer[p] for p in parents[step] if p in layer]
        if known:
            layer[step] = max(known) + 1
        elif i == 0:
            layer[step] = 0
        else:
            layer[step] = layer[steps[i - 1]] + 1
    return layer


def dag_svg(run: dict[str, Any]) -> str:
    """The SVG of ``run`` (as `Queries.run` returns it): a box per step with its counts of
    tasks done, running and failed, linking to the step's tasks."""
    steps = run["steps"]
    names = [s["name"] for s in steps]
    if not names:
        return '<p class="empty">No step has started yet.</p>'
    layer = layers(names, run["edges"])
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(layer[name], []).append(name)
    widest = max(len(r) for r in rows.values())
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    height = MARGIN * 2 + (max(rows) + 1) * NODE_H + max(rows) * GAP_Y
    pos: dict[str, tuple[float, float]] = {}
    for depth, row in rows.items():
        row_width = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = (width - row_width) / 2
        for i, name in enumerate(row):
            pos[name] = (left + i * (NODE_W + GAP_X), MARGIN + depth * (NODE_H + GAP_Y))
    out = [f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="the run\'s graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>']
    for parent, children in run["edges"].items():
        for child in children:
            if parent not in pos or child not in pos:
                continue
            x1, y1 = pos[parent][0] + NODE_W / 2, pos[parent][1] + NODE_H
            x2, y2 = pos[child][0] + NODE_W / 2, pos[child][1]
            back = " back" if y2 <= y1 else ""
            mid = (y1 + y2) / 2
            out.append(f'<path class="edge{back}" d="M {x1:.0f} {y1:.0f} C {x1:.0f} {mid:.0f}, {x2:.0f} {mid:.0f}, '
                       f'{x2:.0f} {y2:.0f}" marker-end="url(#arrow)"/>')
    for step in steps:
        name, counts = step["name"], step["counts"]
        x, y = pos[name]
        state = ("failed" if counts["failed"] else "running" if counts["running"] or counts["pending"]
                 else "done" if counts["done"] else "waiting")
        label = html.escape(name)
        text = f'✓ {counts["done"]}  ▶ {counts["running"]}  ✗ {counts["failed"]}'
        if counts["pending"]:
            text += f'  … {counts["pending"]}'
        out.append(
            f'<a href="#step-{label}" class="step-link"><g class="step {state}" data-step="{label}" '
            f'data-done="{counts["done"]}" data-running="{counts["running"]}" data-failed="{counts["failed"]}">'
            f'<title>{label}: {counts["done"]} done, {counts["running"]} running, {counts["failed"]} failed, '
            f'{counts["pending"]} waiting</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="7"/>'
            f'<text class="name" x="{x + NODE_W / 2:.0f}" y="{y + 22:.0f}">{label}</text>'
            f'<text class="counts" x="{x + NODE_W / 2:.0f}" y="{y + 42:.0f}">{html.escape(text)}</text></g></a>')
    out.append("</svg>")
    return "".join(out)
