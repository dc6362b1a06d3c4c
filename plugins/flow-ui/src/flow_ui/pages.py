"""The HTML pages, rendered on the server: every value is escaped here, once.

Each page is one request; a page about something still running carries ``data-live`` and
the small script in ``static/ui.js`` re-fetches it every few seconds and swaps its content.
"""

from __future__ import annotations

import html
import time
from datetime import datetime
from typing import Any, Iterable
from urllib.parse import quote, urlencode

from .dag import dag_svg
from .previews import INLINE_LIMIT, PAGE_LIMIT, artifact_preview, human_size

STATUSES = ("running", "succeeded", "failed", "crashed")
e = html.escape


def href(*parts: str) -> str:
    return "/flows/" + "/".join(quote(p, safe="") for p in parts)


def when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def offset(seconds: float) -> str:
    """A timeline tick: milliseconds under a second, else as `duration`."""
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else duration(seconds)


def layout(title: str, body: str, live: bool = False, crumbs: Iterable[tuple[str, str]] = ()) -> str:
    trail = "".join(f' / <a href="{e(link)}">{e(text)}</a>' for text, link in crumbs)
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)} · Flow</title><link rel=\"stylesheet\" href=\"/static/ui.css\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>"
        f"<body data-live=\"{1 if live else 0}\"><header><a class=\"home\" href=\"/\">Flow runs</a>{trail}"
        "<span class=\"readonly\">read-only</span></header>"
        f"<main>{body}</main><script src=\"/static/ui.js\"></script></body></html>")


def badge(status: str) -> str:
    return f'<span class="status {e(status)}">{e(status)}</span>'


def tag_list(tags: Iterable[str], system: bool = False) -> str:
    cls = "tag system" if system else "tag"
    return "".join(f'<a class="{cls}" href="/?{urlencode({"tag": t})}">{e(t)}</a>' for t in tags)


# -- the runs list ----------------------------------------------------------------------------

def runs_page(listing: dict[str, Any], flows: list[str]) -> str:
    f = listing["filters"]
    flow_options = "".join(f'<option value="{e(n)}"{" selected" if n == f["flow"] else ""}>{e(n)}</option>'
                           for n in flows)
    status_options = "".join(f'<option value="{s}"{" selected" if s == f["status"] else ""}>{s}</option>'
                             for s in STATUSES)
    form = (
        '<form class="filters" method="get" action="/">'
        f'<label>Flow <select name="flow"><option value="">all</option>{flow_options}</select></label>'
        f'<label>User <input name="user" value="{e(f["user"])}" placeholder="any"></label>'
        f'<label>Tag <input name="tag" value="{e(f["tag"])}" placeholder="any"></label>'
        f'<label>Status <select name="status"><option value="">any</option>{status_options}</select></label>'
        '<button type="submit">Filter</button></form>')
    rows = []
    for run in listing["runs"]:
        link = href(run["flow"], run["run_id"])
        rows.append(
            f'<tr class="run {e(run["status"])}" data-pathspec="{e(run["pathspec"])}">'
            f'<td><a href="{e(link)}">{e(run["pathspec"])}</a></td><td>{badge(run["status"])}</td>'
            f'<td>{e(run["user"])}</td><td>{when(run["created_at"])}</td><td>{duration(run["duration"])}</td>'
            f'<td>{tag_list(run["tags"])}</td></tr>')
    table = ('<table class="runs"><thead><tr><th>Run</th><th>Status</th><th>User</th><th>Started</th>'
             f'<th>Duration</th><th>Tags</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
             if rows else '<p class="empty">No run matches.</p>')
    query = {k: v for k, v in f.items() if v}
    pager = [f'<span class="count">{listing["total"]} runs · page {listing["page"]} of {listing["pages"]}</span>']
    if listing["page"] > 1:
        pager.insert(0, f'<a class="prev" href="/?{e(urlencode({**query, "page": listing["page"] - 1}))}">← newer</a>')
    if listing["page"] < listing["pages"]:
        pager.append(f'<a class="next" href="/?{e(urlencode({**query, "page": listing["page"] + 1}))}">older →</a>')
    live = any(r["status"] == "running" for r in listing["runs"])
    return layout("Runs", f"<h1>Runs</h1>{form}{table}<nav class=\"pager\">{' '.join(pager)}</nav>", live=live)


# -- one run ----------------------------------------------------------------------------------

def timeline_svg(timeline: dict[str, Any]) -> str:
    bars = timeline["attempts"]
    if not bars:
        return '<p class="empty">No task has started yet.</p>'
    start, end = timeline["start"], timeline["end"]
    span = max(end - start, 1e-3)
    row = 16 if len(bars) <= 200 else 5
    label_w, width = 220, 900
    height = row * len(bars) + 24
    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 50}" height="{height}">']
    for tick in range(5):
        x = label_w + width * tick / 4
        out.append(f'<line class="tick" x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height - 16}"/>'
                   f'<text class="ticklabel" x="{x:.0f}" y="{height - 4}">+{offset(span * tick / 4)}</text>')
    now = time.time()
    for i, bar in enumerate(bars):
        y = i * row
        x1 = label_w + width * (bar["start"] - start) / span
        x2 = label_w + width * ((bar["end"] or now) - start) / span
        name = f'{bar["step"]}/{bar["task_id"]}' + (f' #{bar["attempt"]}' if bar["attempt"] else "")
        took = duration((bar["end"] or now) - bar["start"])
        link = attempt_href(bar["pathspec"], bar["attempt"])
        label = f'<text class="barlabel" x="{label_w - 6}" y="{y + row - 4}">{e(name)}</text>' if row >= 12 else ""
        out.append(f'<a href="{e(link)}"><g class="attempt {e(bar["state"])}" data-step="{e(bar["step"])}">'
                   f'<title>{e(name)}: {e(bar["state"])}, {took}</title>{label}'
                   f'<rect x="{x1:.1f}" y="{y + 1}" width="{max(x2 - x1, 1.5):.1f}" height="{row - 2}"/></g></a>')
    out.append("</svg>")
    return "".join(out)


def run_page(run: dict[str, Any], timeline: dict[str, Any]) -> str:
    flow, run_id = run["flow"], run["run_id"]
    facts = [("Status", badge(run["status"])), ("User", e(run["user"])), ("Started", when(run["created_at"])),
             ("Finished", when(run["finished_at"])), ("Duration", duration(run["duration"]))]
    if run["origin_run_id"]:
        facts.append(("Resumed from", f'<a class="origin" href="{e(href(flow, run["origin_run_id"]))}">'
                                      f'{e(flow)}/{e(run["origin_run_id"])}</a>'))
    started = run["started_by"]
    how = [f"runtime {e(started['runtime'])}" if started["runtime"] else "",
           f"on {e(started['hostname'])}" if started["hostname"] else "",
           e(started["production"]) if started["production"] else "",
           "from a code package" if started["code_package"] else "",
           f"environment {e(started['environment'])}" if started["environment"] else "",
           "by an event" if started["trigger"] else ""]
    facts.append(("Started by", " · ".join(h for h in how if h) or "unknown"))
    if started.get("command"):
        facts.append(("Command", f"<code>{e(started['command'])}</code>"))
    facts.append(("Tags", tag_list(run["tags"]) + tag_list(run["system_tags"], system=True)))
    params = "".join(f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in run["parameters"].items())
    facts_html = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    sections = []
    by_step: dict[str, list[dict[str, Any]]] = {}
    for task in run["tasks"]:
        by_step.setdefault(task["step"], []).append(task)
    for step in run["steps"]:
        c = step["counts"]
        items = "".join(
            f'<li class="task {e(t["state"])}"><a href="{e(href(*t["pathspec"].split("/")))}">{e(t["task_id"])}</a></li>'
            for t in by_step.get(step["name"], []))
        waiting = f" · {c['pending']} waiting" if c["pending"] else ""
        sections.append(
            f'<section class="step-tasks" id="step-{e(step["name"])}"><h3>{e(step["name"])} '
            f'<small>{c["done"]} done · {c["running"]} running · {c["failed"]} failed'
            f'{waiting}</small></h3><ul class="tasks">{items}</ul></section>')
    params_html = f'<table class="params">{params}</table>' if params else '<p class="empty">none</p>'
    body = (
        f'<h1>{e(flow)}/{e(run_id)}</h1>'
        f'<div class="columns"><table class="facts">{facts_html}</table>'
        f'<div><h2>Parameters</h2>'
        f'{params_html}</div></div>'
        f'<h2>Graph</h2><div class="dag-box">{dag_svg(run)}</div>'
        f'<h2>Timeline</h2><div class="timeline-box">{timeline_svg(timeline)}</div>'
        f'<h2>Tasks</h2>{"".join(sections)}')
    return layout(f"{flow}/{run_id}", body, live=run["status"] == "running",
                  crumbs=[(flow, f"/?{urlencode({'flow': flow})}"), (run_id, href(flow, run_id))])


# -- one task ---------------------------------------------------------------------------------

def log_block(stream: str, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f'<span class="line">{e(line)}</span>\n' for line in lines)
    shown = f'<pre class="log-lines">{body}</pre>' if lines else '<p class="empty">nothing</p>'
    return f'<section class="log" data-stream="{stream}"><h3>{stream}</h3>{shown}</section>'


def attempt_href(pathspec: str, attempt: int) -> str:
    """The task page showing one attempt of the task."""
    return f"{href(*pathspec.split('/'))}?{urlencode({'attempt': attempt})}"


def task_page(task: Any, attempts: list[dict[str, Any]], stdout: str, stderr: str, cards: list[Any],
              chosen: int | None = None) -> str:
    """The task as its latest attempt left it, or (``chosen``) as one attempt of it did."""
    flow, run_id, step, task_id = task.path_components
    state = "succeeded" if task.successful else "running" if not task.finished else "failed"
    shown = task.current_attempt
    rows = []
    for a in attempts:
        took = duration((a["end"] or time.time()) - a["start"]) if a["start"] else "—"
        note = " · ".join(e(f"{k}: {a[k]}") for k in ("hostname", "failure", "stopped") if a.get(k))
        mark = " shown" if a["attempt"] == shown else ""
        rows.append(f'<tr class="attempt {e(a["state"])}{mark}" data-attempt="{a["attempt"]}">'
                    f'<td><a href="{e(attempt_href(task.pathspec, a["attempt"]))}">{a["attempt"]}</a></td>'
                    f'<td>{badge(a["state"])}</td><td>{when(a["start"])}</td><td>{took}</td><td>{note}</td></tr>')
    exception = task.exception if task.finished and not task.successful else None
    exc_html = ""
    if exception is not None:
        trace = f"<pre>{e(exception.stacktrace)}</pre>" if exception.stacktrace else ""
        exc_html = (f'<section class="exception"><h2>Exception</h2><p><code>{e(exception.type)}</code>: '
                    f'{e(exception.exception)}</p>{trace}</section>')
    artifacts = []
    for artifact in task:
        link = href(flow, run_id, step, task_id, artifact.id)
        artifacts.append(
            f'<tr class="artifact" data-name="{e(artifact.id)}"><td><a href="{e(link)}">{e(artifact.id)}</a></td>'
            f'<td><code>{e(artifact.type)}</code></td><td>{human_size(artifact.size)}</td>'
            f'<td class="preview">{artifact_preview(artifact, INLINE_LIMIT)}</td></tr>')
    art_html = ('<table class="artifacts"><thead><tr><th>Name</th><th>Type</th><th>Size</th><th>Preview</th></tr>'
                f'</thead><tbody>{"".join(artifacts)}</tbody></table>' if artifacts
                else '<p class="empty">No artifact (a task has artifacts once it succeeds).</p>')
    origin = ""
    if task.origin_pathspec:
        origin = (f'<tr><th>Reused from</th><td><a class="origin" href="{e(href(*task.origin_pathspec.split("/")))}">'
                  f'{e(task.origin_pathspec)}</a></td></tr>')
    which = f' <small class="attempt-shown">attempt {shown}</small>' if chosen is not None else ""
    body = (
        f'<h1>{e(task.pathspec)}{which} {badge(state)}</h1>'
        f'<table class="facts"><tr><th>Started</th><td>{when(attempts[0]["start"] if attempts else None)}</td></tr>'
        f'<tr><th>Finished</th><td>{when(task.finished_at.timestamp() if task.finished_at else None)}</td></tr>'
        f'{origin}</table>'
        f'<h2>Attempts</h2><table class="attempts"><thead><tr><th>#</th><th>State</th><th>Started</th>'
        f'<th>Took</th><th>Notes</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f'{exc_html}'
        f'<h2>Logs</h2><p class="logs-note">Output of attempt {shown}. While it runs, what it printed appears '
        'here as the task saves it: every second or so at first, less often as it runs on.</p>'
        '<input type="search" class="log-search" placeholder="Search the logs" aria-label="Search the logs">'
        f'{log_block("stdout", stdout)}{log_block("stderr", stderr)}'
        f'<h2>Artifacts</h2>{art_html}'
        f'<section class="cards" id="cards"><h2>Cards</h2>{cards_html(task, cards, chosen)}</section>')
    return layout(task.pathspec, body, live=not task.finished,
                  crumbs=[(flow, f"/?{urlencode({'flow': flow})}"), (run_id, href(flow, run_id)),
                          (f"{step}/{task_id}", href(flow, run_id, step, task_id))])


def card_href(task: Any, card: Any, chosen: int | None = None) -> str:
    link = href(*task.path_components, "cards", card.hash)
    return link if chosen is None else f"{link}?{urlencode({'attempt': chosen})}"


def cards_html(task: Any, cards: list[Any], chosen: int | None = None) -> str:
    """Each card in a sandboxed frame (its scripts and styles stay inside), with a link to open it."""
    if not cards:
        return '<p class="empty">No cards (a step shows some with @card).</p>'
    shown = []
    for card in cards:
        link = card_href(task, card, chosen)
        title = f"{card.type} card" + (f" “{card.id}”" if card.id else "")
        shown.append(f'<figure class="card"><figcaption>{e(title)} · <a href="{e(link)}">open</a></figcaption>'
                     f'<iframe class="card-frame" src="{e(link)}" sandbox="allow-scripts" title="{e(title)}">'
                     '</iframe></figure>')
    return "".join(shown)


def artifact_page(artifact: Any) -> str:
    flow, run_id, step, task_id, name = artifact.path_components
    body = (f'<h1>{e(artifact.pathspec)}</h1><table class="facts">'
            f'<tr><th>Type</th><td><code>{e(artifact.type)}</code></td></tr>'
            f'<tr><th>Size</th><td>{human_size(artifact.size)} stored</td></tr>'
            f'<tr><th>Key</th><td><code>{e(artifact.sha)}</code></td></tr></table>'
            f'<h2>Preview</h2><div class="preview">{artifact_preview(artifact, PAGE_LIMIT)}</div>')
    return layout(artifact.pathspec, body,
                  crumbs=[(flow, f"/?{urlencode({'flow': flow})}"), (run_id, href(flow, run_id)),
                          (f"{step}/{task_id}", href(flow, run_id, step, task_id)),
                          (name, href(flow, run_id, step, task_id, name))])


def error_page(status: int, message: str) -> str:
    title = {404: "Not found", 400: "Bad request"}.get(status, "Error")
    return layout(title, f'<h1>{status} · {e(title)}</h1><p class="error-message">{e(message)}</p>'
                         '<p><a href="/">All runs</a></p>')
