"""A card as one self-contained HTML document: styles inline, images as data URIs, and the
Vega scripts inline only when the card holds a chart, so it opens from a file, from S3 or in
a UI with no network access."""

from __future__ import annotations

import time
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from flow_core.model.cards.components import VEGA_MARKER, render_component
from flow_core.model.cards.markup import escape, script_json

RUNNING, FINAL = "running", "final"
#: Seconds between reloads of a running card opened in a browser.
RUNNING_RELOAD_SECONDS = 5
_VENDOR_FILES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")

_STYLE = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
       background: #f6f7f9; color: #1d2330; }
.flow-card { max-width: 1100px; margin: 0 auto; padding: 24px; }
.flow-card > header h1 { font-size: 20px; margin: 0 0 4px; word-break: break-all; }
.flow-card > header .flow-subtitle { color: #5b6475; font-size: 13px; }
.flow-status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
               background: #fff3cd; color: #7a5b00; margin-left: 8px; }
.flow-card main > * { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 12px 16px;
                      margin: 12px 0; }
.flow-section h2 { font-size: 16px; margin: 0 0 8px; }
.flow-section > * + * { margin-top: 8px; }
.flow-table-wrap { overflow-x: auto; }
.flow-table { border-collapse: collapse; font-size: 14px; }
.flow-table th, .flow-table td { border: 1px solid #e2e5ea; padding: 4px 10px; text-align: left; vertical-align: top; }
.flow-table th { background: #f0f2f5; }
.flow-note { color: #5b6475; font-size: 12px; margin-top: 4px; }
.flow-image { margin: 0; } .flow-image img { max-width: 100%; image-rendering: auto; }
.flow-image figcaption { color: #5b6475; font-size: 13px; }
.flow-progress { display: flex; gap: 10px; align-items: center; }
.flow-progress progress { flex: 1; height: 14px; }
.flow-artifact pre, .flow-error pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0 0;
                                      font-size: 13px; }
.flow-artifact-name { font-weight: 600; margin-right: 8px; }
.flow-artifact-type, .flow-type { color: #5b6475; font-family: monospace; font-size: 12px; }
.flow-error { border-left: 4px solid #c62828 !important; background: #fdecea !important; }
.flow-error-title { font-weight: 600; color: #8e1c1c; }
.flow-vega-chart { width: 100%; }
.flow-graph svg { max-width: 100%; height: auto; }
.flow-code pre, .flow-data-viewer pre { background: #f6f8fa; border-radius: 6px; padding: 10px 12px; margin: 6px 0 0;
                                        font-size: 13px; overflow-x: auto; }
.flow-py-kw { color: #cf222e; } .flow-py-str { color: #0a3069; } .flow-py-num { color: #0550ae; }
.flow-py-com { color: #6e7781; font-style: italic; } .flow-py-def { color: #8250df; font-weight: 600; }
.flow-py-builtin { color: #953800; }
.flow-data-viewer summary, .flow-viewer-title { font-weight: 600; cursor: pointer; }
.flow-copy { margin-left: 10px; font-size: 11px; padding: 1px 8px; border: 1px solid #d0d7de; border-radius: 4px;
             background: #fff; cursor: pointer; }
.flow-value-box { border-left: 6px solid #8a93a6 !important; }
.flow-value-box-title { color: #5b6475; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.flow-value-box-value { font-size: 32px; font-weight: 700; margin: 2px 0; }
.flow-value-box-subtitle, .flow-value-box-change { color: #5b6475; font-size: 13px; }
.flow-theme-success { border-left-color: #2e7d32 !important; } .flow-theme-warning { border-left-color: #ed8b00 !important; }
.flow-theme-danger, .flow-theme-error { border-left-color: #c62828 !important; }
.flow-theme-info, .flow-theme-primary { border-left-color: #2f6fde !important; }
.flow-value-box.flow-theme-bg-gradient-indigo-purple { background: linear-gradient(135deg, #4b3fd1, #8e44ad) !important;
                                                       color: #fff; }
.flow-theme-bg-gradient-indigo-purple div { color: #fff; }
.flow-timeline-header { display: flex; gap: 12px; align-items: baseline; }
.flow-timeline-title { font-weight: 600; }
.flow-timeline-status { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: #fff3cd; }
.flow-timeline-status[data-status="finished"] { background: #e6f4ea; }
.flow-timeline-stats { color: #5b6475; font-size: 13px; }
.flow-events { list-style: none; padding: 0; margin: 8px 0 0; }
.flow-event { border-left: 4px solid #8a93a6; padding: 4px 10px; margin: 6px 0; }
.flow-event-time { color: #5b6475; font-size: 12px; font-family: monospace; }
.flow-event dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0; font-size: 13px; }
.flow-event dt { color: #5b6475; } .flow-event dd { margin: 0; font-family: monospace; }
.flow-priority-high, .flow-priority-critical { background: #fff8e1; }
"""

_VEGA_BOOT = """
document.querySelectorAll('[data-flow-vega]').forEach(function (box) {
  var spec = JSON.parse(box.querySelector('.flow-vega-spec').textContent);
  var options = JSON.parse(box.querySelector('.flow-vega-options').textContent);
  var target = box.querySelector('.flow-vega-chart');
  vegaEmbed(target, spec, options).then(function () { box.setAttribute('data-rendered', 'true'); })
    .catch(function (error) {
      box.setAttribute('data-rendered', 'failed');
      target.textContent = 'The chart failed to draw: ' + error;
      target.className += ' flow-error';
    });
});
"""


@lru_cache(maxsize=1)
def vega_scripts() -> str:
    """The vendored Vega, Vega-Lite and vega-embed bundles as inline ``<script>`` elements."""
    folder = resources.files("flow_core.model.cards").joinpath("vendor")
    parts = []
    for name in _VENDOR_FILES:
        text = folder.joinpath(name).read_text(encoding="utf-8")
        text = "\n".join(line for line in text.splitlines() if not line.startswith("//# sourceMappingURL="))
        parts.append(f"<script>/* {name}: see flow_core/model/cards/vendor/README.md */\n{text}\n</script>")
    return "\n".join(parts)


def render_page(title: str, components: Iterable[Any], *, status: str = FINAL, subtitle: str = "",
                facts: dict[str, Any] | None = None) -> str:
    """The card's HTML document. ``facts`` (type, id, pathspec…) go in a JSON block a UI or a
    test can read without parsing the page."""
    body = "".join(f"{render_component(component)}\n" for component in components)
    needs_vega = VEGA_MARKER in body
    running = status == RUNNING
    reload = f'<meta http-equiv="refresh" content="{RUNNING_RELOAD_SECONDS}">' if running else ""
    badge = (f'<span class="flow-status">running — updated {time.strftime("%H:%M:%S", time.gmtime())} UTC</span>'
             if running else "")
    sub = f'<div class="flow-subtitle">{escape(subtitle)}</div>' if subtitle else ""
    info = script_json({**(facts or {}), "status": status})
    scripts = f"{vega_scripts()}\n<script>{_VEGA_BOOT}</script>" if needs_vega else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" data-card-status="{escape(status)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{reload}<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n"
        f'<script type="application/json" id="flow-card-facts">{info}</script>\n</head>\n<body>\n'
        f'<div class="flow-card">\n<header><h1>{escape(title)}{badge}</h1>{sub}</header>\n'
        f"<main>\n{body}</main>\n</div>\n{scripts}\n</body>\n</html>\n"
    )
