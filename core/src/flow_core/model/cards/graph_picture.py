"""The flow's graph as an SVG picture for the default card: steps in rows by their distance
from ``start``, an arrow per edge, the card's own step highlighted. No script draws it."""

from __future__ import annotations

from collections import deque

from flow_core.model.cards.markup import escape
from flow_core.model.graph import START, FlowGraph

_ROW_HEIGHT = 72
_BOX_HEIGHT = 32
_GAP = 24
_CHAR_WIDTH = 8


def graph_levels(graph: FlowGraph) -> list[list[str]]:
    """Steps by breadth-first distance from ``start`` (a loop's way back does not push a step down)."""
    level = {START: 0}
    queue = deque([START])
    while queue:
        name = queue.popleft()
        for child in graph[name].out_funcs:
            if child not in level:
                level[child] = level[name] + 1
                queue.append(child)
    rows: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for name in graph.nodes:  # the file's order within a row
        if name in level:
            rows[level[name]].append(name)
    return rows


def graph_svg(graph: FlowGraph, current_step: str | None = None) -> str:
    rows = graph_levels(graph)
    width_of = {name: max(80, _CHAR_WIDTH * len(name) + 24) for row in rows for name in row}
    row_widths = [sum(width_of[n] for n in row) + _GAP * (len(row) - 1) for row in rows]
    total_width = max(row_widths) + 2 * _GAP
    centre: dict[str, tuple[float, float]] = {}
    for index, (row, row_width) in enumerate(zip(rows, row_widths)):
        x = (total_width - row_width) / 2
        y = _GAP + index * _ROW_HEIGHT
        for name in row:
            centre[name] = (x + width_of[name] / 2, y + _BOX_HEIGHT / 2)
            x += width_of[name] + _GAP
    height = _GAP * 2 + (len(rows) - 1) * _ROW_HEIGHT + _BOX_HEIGHT
    edges, boxes = [], []
    for name, (cx, cy) in centre.items():
        for child in graph[name].out_funcs:
            if child not in centre:
                continue
            tx, ty = centre[child]
            if ty > cy:
                edges.append(f'<line class="flow-edge" data-from="{escape(name)}" data-to="{escape(child)}" '
                             f'x1="{cx:.0f}" y1="{cy + _BOX_HEIGHT / 2:.0f}" x2="{tx:.0f}" '
                             f'y2="{ty - _BOX_HEIGHT / 2 - 2:.0f}" marker-end="url(#flow-arrow)"/>')
            else:  # back to an earlier row: a loop of a recursive switch
                side = max(cx, tx) + width_of[name] / 2 + 20
                edges.append(f'<path class="flow-edge" data-from="{escape(name)}" data-to="{escape(child)}" '
                             f'd="M{cx + width_of[name] / 2:.0f},{cy:.0f} C{side:.0f},{cy:.0f} {side:.0f},{ty:.0f} '
                             f'{tx + width_of[child] / 2 + 2:.0f},{ty:.0f}" fill="none" marker-end="url(#flow-arrow)"/>')
    for name, (cx, cy) in centre.items():
        width = width_of[name]
        mine = name == current_step
        fill, stroke = ("#dbe8ff", "#2f6fde") if mine else ("#ffffff", "#8a93a6")
        boxes.append(
            f'<g class="flow-step{" flow-current-step" if mine else ""}" data-step="{escape(name)}">'
            f'<rect x="{cx - width / 2:.0f}" y="{cy - _BOX_HEIGHT / 2:.0f}" width="{width}" height="{_BOX_HEIGHT}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{2 if mine else 1}"/>'
            f'<text x="{cx:.0f}" y="{cy + 5:.0f}" text-anchor="middle" font-size="13" '
            f'font-family="monospace">{escape(name)}</text>'
            f"<title>{escape(name)} ({escape(graph[name].type)})</title></g>")
    return (
        f'<div class="flow-graph"><svg xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="the graph of {escape(graph.name)}" width="{total_width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {total_width:.0f} {height:.0f}">'
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a93a6"/></marker></defs>'
        f'<g stroke="#8a93a6" stroke-width="1.5">{"".join(edges)}</g>{"".join(boxes)}</svg></div>'
    )
