"""A card type from an installed plugin distribution: ``@card(type="scores")`` renders with
it while the task runs and once it has succeeded."""

from __future__ import annotations

import html
from pathlib import Path

from flow_core import Flow, client
from flow_core.cards import get_cards
from flow_core.testing import run_id_of


def install_card_plugin(folder: Path) -> Path:
    """A distribution that adds the card type ``scores``, installed into ``folder`` as pip
    would: its module and a dist-info whose entry point names it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flow_scores_card.py").write_text(SCORES_PLUGIN)
    info = folder / "flow_scores_card-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flow-scores-card\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[flow.plugins]\nflow-scores-card = flow_scores_card\n")
    return folder


SCORES_PLUGIN = '''
import html
from flow_core.plugin_api import MetaflowCard, hookimpl


class ScoresCard(MetaflowCard):
    type = "scores"
    RUNTIME_UPDATABLE = True

    def __init__(self, options=None, components=None, graph=None):  # written before Metaflow passed `flow`
        self.title = (options or {}).get("title", "Scores")
        self.steps = sorted(graph)

    def render(self, task):
        last = self.runtime_data["user"]
        return (f"<html><body><h1>{html.escape(self.title)}</h1><p id='score'>{task.data.score}</p>"
                f"<p id='pathspec'>{task.pathspec}</p><p id='last'>{last.get('epoch')}</p>"
                f"<p id='steps'>{' '.join(self.steps)}</p><p id='token'>[METAFLOW_RELOAD_TOKEN]</p></body></html>")

    def render_runtime(self, task, data):
        return f"<html><body><p id='live'>epoch {data['user']['epoch']}</p></body></html>"


@hookimpl
def flow_card_types():
    return [ScoresCard]
'''

SCORES_FLOW = '''
from flow_core import FlowSpec, card, current, step
from flow_core.cards import Markdown, get_cards


class Scored(FlowSpec):
    @card(type="scores", id="scores", options={"title": "Validation"})
    @card(type="blank", id="notes")
    @step
    def start(self):
        current.card.append(Markdown("goes to the blank card"))  # scores takes no user components
        for epoch in (1, 2):
            self.score = 0.5 + epoch / 10
            current.card["scores"].refresh({"epoch": epoch}, force=True)
        self.live = get_cards(current.pathspec, id="scores")[0].html
        self.next(self.end)

    @card(type="nosuch")
    @step
    def end(self):
        pass


if __name__ == "__main__":
    Scored()
'''


def test_a_card_type_from_an_installed_plugin_renders_live_and_final(flow_env, write_flow, python_flow, tmp_path):
    site = install_card_plugin(tmp_path / "site")
    result = python_flow(write_flow("scored.py", SCORES_FLOW), "run", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    client.namespace(None)
    run = Flow("Scored")[run_id_of(result.stdout)]
    start = run["start"].task
    assert "<p id='live'>epoch 2</p>" in start.data.live  # render_runtime, given refresh's data
    cards = {card.id: card for card in get_cards(start)}
    assert cards["scores"].type == "scores"
    final = cards["scores"].html
    assert "<h1>Validation</h1>" in final and "<p id='score'>0.7</p>" in final and "<p id='last'>2</p>" in final
    assert f"<p id='pathspec'>{start.pathspec}</p>" in final and "<p id='steps'>end start</p>" in final
    assert "<p id='token'>final</p>" in final
    assert "goes to the blank card" in cards["notes"].html and "cannot tell which" not in start.stderr

    # An unknown type still says which types there are, the plugin's included.
    (missing,) = get_cards(run["end"].task)
    assert "there is no card type 'nosuch'; the installed card types are default, blank, scores" in \
        html.unescape(missing.html)
