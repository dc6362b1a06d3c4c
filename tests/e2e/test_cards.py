"""@card end to end: flows that make cards, read back through the Client API and the
``card`` commands, and opened in headless Chromium with the network cut off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flow_core import Flow, client
from flow_core.cards import get_cards
from flow_core.testing import run_id_of

PNG_MAKER = '''
import struct, zlib


def png(width, height):
    """A red PNG, made without PIL."""
    rows = b"".join(b"\\x00" + b"\\xff\\x00\\x00" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
'''

EVERY_COMPONENT = PNG_MAKER + '''
import pandas as pd
from flow_core import FlowSpec, Parameter, card, current, step
from flow_core.cards import Artifact, Image, Markdown, ProgressBar, Table, VegaChart, get_cards

CHART = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": [{"fruit": "apples", "count": 3}, {"fruit": "pears", "count": 7}]},
    "mark": "bar",
    "encoding": {"x": {"field": "fruit", "type": "nominal"}, "y": {"field": "count", "type": "quantitative"}},
}


class EveryComponent(FlowSpec):
    alpha = Parameter("alpha", default=0.5)

    @card
    @step
    def start(self):
        self.total = 42
        current.card.append(Markdown("""
            # Quarterly fruit

            Counted **by hand**.
        """))
        progress = ProgressBar(max=10, label="Counting", value=0, unit="crates")
        current.card.append(progress)
        progress.update(4)
        current.card.refresh()  # stored now, while the task runs
        self.live_card = get_cards(current.pathspec)[0].html
        progress.update(10)
        current.card.append(Table([["apples", 3], ["pears", Artifact({"ripe": True})]], headers=["fruit", "count"]))
        frame = pd.DataFrame({"city": ["Lyon", "Oslo"], "rain_mm": [831, 763]})
        current.card.append(Table.from_dataframe(frame))
        current.card.append(Image(png(40, 30), label="A red square"))
        current.card.append(VegaChart(CHART))
        current.card.append(Artifact({"weights": [0.1, 0.2]}, name="model"))
        self.next(self.end)

    @card(type="blank", id="summary", options={"title": "Summary"})
    @step
    def end(self):
        current.card["summary"].append(Markdown("Nothing to chart here."))


if __name__ == "__main__":
    EveryComponent()
'''


def _run(python_flow, path: Path, *args: str) -> str:
    result = python_flow(path, "run", *args)
    assert result.returncode == 0, result.stderr
    return run_id_of(result.stdout)


def _task(flow: str, run_id: str, step: str):
    client.namespace(None)
    return Flow(flow)[run_id][step].task


def _open(page, html: str, path: Path) -> None:
    path.write_text(html, encoding="utf-8")
    page.goto(path.as_uri())


def test_a_card_with_every_component_renders_offline_in_a_browser(flow_env, write_flow, python_flow, offline_page,
                                                                  tmp_path):
    run_id = _run(python_flow, write_flow("every.py", EVERY_COMPONENT))
    start = _task("EveryComponent", run_id, "start")
    (card,) = get_cards(start)
    assert card.type == "default" and card.id is None and card.attempt == 0

    # What refresh() stored while the task ran: the bar at 4 of 10, marked running.
    live = start.data.live_card
    assert 'data-card-status="running"' in live and "4 / 10" in live and "Quarterly fruit" in live

    page = offline_page
    _open(page, card.html, tmp_path / "every.html")
    page.wait_for_selector("[data-flow-vega][data-rendered]")
    assert page.locator(".flow-markdown h1").inner_text() == "Quarterly fruit"
    assert page.locator(".flow-markdown strong").inner_text() == "by hand"
    tables = page.locator("main > .flow-table-wrap table")
    assert tables.nth(0).locator("th").all_inner_texts() == ["fruit", "count"]
    assert tables.nth(0).locator("tbody tr").nth(0).locator("td").all_inner_texts() == ["apples", "3"]
    assert "{'ripe': True}" in tables.nth(0).locator("tbody tr").nth(1).inner_text()
    assert tables.nth(1).locator("th").all_inner_texts() == ["", "city", "rain_mm"]
    assert tables.nth(1).locator("tbody tr").nth(1).locator("td").all_inner_texts() == ["1", "Oslo", "763"]
    image = page.locator(".flow-image img")
    assert page.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]", image.element_handle()) \
        == [True, 40, 30]
    assert page.locator(".flow-image figcaption").inner_text() == "A red square"
    assert page.locator("[data-flow-vega]").get_attribute("data-rendered") == "true"
    chart = page.locator(".flow-vega-chart svg")
    assert chart.count() == 1 and chart.bounding_box()["width"] > 100
    assert {"apples", "pears"} <= set(page.locator(".flow-vega-chart svg text").all_text_contents())
    progress = page.locator(".flow-progress progress")
    assert progress.get_attribute("value") == "10" and progress.get_attribute("max") == "10"
    assert page.locator(".flow-progress").inner_text().split() == ["Counting", "10", "/", "10", "crates"]
    model = page.locator(".flow-artifact", has_text="model")
    assert "{'weights': [0.1, 0.2]}" in model.inner_text()
    assert page.locator("html").get_attribute("data-card-status") == "final"
    page.screenshot(path=str(tmp_path / "every-component.png"), full_page=True)
    assert (tmp_path / "every-component.png").stat().st_size > 0
    assert page.left_machine == [] and page.console_errors == []

    # The blank card has no chart, so it carries no Vega scripts.
    (summary,) = get_cards(_task("EveryComponent", run_id, "end"), id="summary")
    assert summary.type == "blank" and "vegaEmbed" not in summary.html
    _open(page, summary.html, tmp_path / "summary.html")
    assert page.locator("h1").inner_text() == "Summary"
    assert page.locator(".flow-markdown").inner_text() == "Nothing to chart here."
    assert page.left_machine == []


DEFAULT_CARD = '''
from flow_core import FlowSpec, Parameter, card, step


class Shapes(FlowSpec):
    alpha = Parameter("alpha", default=0.5)
    label = Parameter("label", default="circle")

    @step
    def start(self):
        self.sizes = [1, 2, 3]
        self.next(self.left, self.right)

    @card
    @step
    def left(self):
        self.area = 3.14 * self.alpha
        self.note = "x" * 5000
        self.next(self.join)

    @step
    def right(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    Shapes()
'''


def test_the_default_card_shows_parameters_artifacts_and_the_graph(flow_env, write_flow, python_flow, offline_page,
                                                                   tmp_path):
    run_id = _run(python_flow, write_flow("shapes.py", DEFAULT_CARD), "--alpha", "2")
    left = _task("Shapes", run_id, "left")
    (card,) = get_cards(left)
    page = offline_page
    _open(page, card.html, tmp_path / "default.html")
    assert page.locator("h1").inner_text() == left.pathspec

    parameters = page.locator("section", has=page.locator("h2", has_text="Parameters"))
    rows = [row.locator("td").all_inner_texts() for row in parameters.locator("tbody tr").all()]
    assert rows == [["alpha", "float", "2.0"], ["label", "str", "'circle'"]]

    artifacts = page.locator("section", has=page.locator("h2", has_text="Artifacts"))
    rows = {row.locator("td").nth(0).inner_text(): row.locator("td").all_inner_texts()
            for row in artifacts.locator("tbody tr").all()}
    assert set(rows) == {"area", "note", "sizes"}  # carried from start too; parameters are listed above
    assert rows["area"][1:] == ["float", "6.28"] and rows["sizes"][1:] == ["list", "[1, 2, 3]"]
    assert "..." in rows["note"][2] and len(rows["note"][2]) <= 300  # a long value is shortened

    graph = page.locator(".flow-graph svg")
    assert set(graph.locator("g.flow-step").evaluate_all("gs => gs.map(g => g.dataset.step)")) == \
        {"start", "left", "right", "join", "end"}
    assert graph.locator("g.flow-current-step").get_attribute("data-step") == "left"
    edges = graph.locator(".flow-edge").evaluate_all("es => es.map(e => e.dataset.from + '>' + e.dataset.to)")
    assert sorted(edges) == ["join>end", "left>join", "right>join", "start>left", "start>right"]
    assert graph.bounding_box()["height"] > 100
    page.screenshot(path=str(tmp_path / "default-card.png"), full_page=True)
    assert page.left_machine == []

    # Steps without @card have none.
    assert len(get_cards(_task("Shapes", run_id, "right"))) == 0


BROKEN_CARDS = '''
import os
import time
from flow_core import FlowSpec, card, current, step
from flow_core.cards import Markdown, MetaflowCardComponent


class Broken(MetaflowCardComponent):
    def render(self):
        raise ValueError("the gauge has no needle")


class Slow(MetaflowCardComponent):
    def render(self):
        time.sleep(120)
        return "<p>too late</p>"


class BrokenCards(FlowSpec):
    @card(id="slow", timeout=1)
    @card(type="nosuchtype", id="odd")
    @card(id="main")
    @step
    def start(self):
        current.card["main"].append(Markdown("before"))
        current.card["main"].append(Broken())
        current.card["main"].append(Markdown("after"))
        current.card["slow"].append(Slow())
        self.next(self.end)

    @card
    @step
    def end(self):
        current.card.append(Markdown("never shown"))
        if os.environ.get("FAIL_END"):
            raise RuntimeError("end fails on purpose")


if __name__ == "__main__":
    BrokenCards()
'''


def test_a_card_that_fails_to_render_never_fails_the_task_and_says_why(flow_env, write_flow, python_flow,
                                                                     offline_page, tmp_path):
    run_id = _run(python_flow, write_flow("broken.py", BROKEN_CARDS))
    start = _task("BrokenCards", run_id, "start")
    assert start.successful
    cards = {card.id: card for card in get_cards(start)}
    main, odd, slow = cards["main"], cards["odd"], cards["slow"]
    assert (main.type, odd.type, slow.type) == ("default", "nosuchtype", "default")

    page = offline_page
    _open(page, main.html, tmp_path / "main.html")
    assert page.locator("main > .flow-markdown").all_inner_texts() == ["before", "after"]  # the rest stands
    error = page.locator(".flow-error")
    assert error.locator(".flow-error-title").inner_text() == "The Broken component failed to render"
    assert "ValueError: the gauge has no needle" in error.locator("pre").inner_text()

    _open(page, odd.html, tmp_path / "odd.html")
    assert page.locator(".flow-error-title").inner_text() == "The nosuchtype card failed to render"
    assert "there is no card type 'nosuchtype'; the installed card types are default, blank" in \
        page.locator(".flow-error pre").inner_text()
    _open(page, slow.html, tmp_path / "slow.html")  # a card that takes longer than its timeout
    assert "rendering the card took longer than its timeout of 1 seconds" in page.locator(".flow-error pre").inner_text()
    assert "failed to render" in start.stderr  # one warning line in the task's own log
    assert page.left_machine == []

    # A task that fails gets no card, as in Metaflow; the run fails for the task's own reason.
    failed = python_flow(write_flow("broken.py", BROKEN_CARDS), "run", env={"FAIL_END": "1"})
    assert failed.returncode == 1 and "end fails on purpose" in failed.stderr
    assert len(get_cards(_task("BrokenCards", run_id_of(failed.stdout), "end"))) == 0


TWO_CARDS = '''
from flow_core import FlowSpec, card, current, step
from flow_core.cards import Markdown


class TwoCards(FlowSpec):
    @card(type="blank", id="first")
    @card(type="blank", id="second")
    @step
    def start(self):
        current.card["first"].append(Markdown("one"))
        current.card["second"].append(Markdown("two"))
        current.card.append(Markdown("ambiguous"))  # two cards with ids: warns, changes nothing
        self.next(self.end)

    @card
    @step
    def end(self):
        current.card.append(Markdown("the end"))


if __name__ == "__main__":
    TwoCards()
'''


def test_the_card_commands_list_get_and_view(flow_env, write_flow, python_flow, flow_cli, tmp_path):
    path = write_flow("two.py", TWO_CARDS)
    run_id = _run(python_flow, path)
    end = _task("TwoCards", run_id, "end")
    task = f"{run_id}/end/{end.id}"

    listed = python_flow(path, "card", "list", task, "--as-json")
    assert listed.returncode == 0, listed.stderr
    (only,) = json.loads(listed.stdout)["cards"]
    assert only["type"] == "default" and only["id"] is None and Path(only["path"]).is_file()

    got = python_flow(path, "card", "get", task)
    assert got.returncode == 0 and got.stdout == get_cards(end)[0].html
    saved = tmp_path / "saved.html"
    assert python_flow(path, "card", "get", task, str(saved)).returncode == 0
    assert saved.read_text() == got.stdout

    viewed = python_flow(path, "card", "view", task)
    assert viewed.returncode == 0, viewed.stderr
    shown = Path(viewed.stdout.strip())
    assert shown.is_file() and shown.read_text() == got.stdout

    # Two cards on one step: `get` lists them; --id or --hash picks one; `STEP` alone means the latest run.
    start = python_flow(path, "card", "get", f"{run_id}/start")
    assert start.returncode == 0 and "has 2 cards" in start.stdout
    first = python_flow(path, "card", "get", "start", "--id", "first")
    assert first.returncode == 0 and "<p>one</p>" in first.stdout and "ambiguous" not in first.stdout
    second_hash = get_cards(_task("TwoCards", run_id, "start"), id="second")[0].hash
    by_hash = flow_cli("card", str(path), "get", f"{run_id}/start", "--hash", second_hash[:5])
    assert by_hash.returncode == 0 and "<p>two</p>" in by_hash.stdout
    listed = python_flow(path, "card", "list", f"{run_id}/start")
    assert listed.returncode == 0 and "id=first" in listed.stdout and "id=second" in listed.stdout
    everything = python_flow(path, "card", "list", "--as-json")  # no PATHSPEC: every task of the latest run
    assert everything.returncode == 0, everything.stderr
    assert [(entry["pathspec"].split("/")[2], len(entry["cards"])) for entry in json.loads(everything.stdout)] == \
        [("start", 2), ("end", 1)]
    missing = python_flow(path, "card", "get", task, "--type", "blank")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].endswith(
        f"TwoCards/{task} has no card with type 'blank'")


def test_get_cards_in_the_client(flow_env, write_flow, python_flow):
    run_id = _run(python_flow, write_flow("two.py", TWO_CARDS))
    start = _task("TwoCards", run_id, "start")
    cards = get_cards(start)
    assert sorted((c.type, c.id) for c in cards) == [("blank", "first"), ("blank", "second")]
    assert [c.id for c in get_cards(start.pathspec, id="first")] == ["first"]
    assert len(get_cards(start, type="default")) == 0
    first = get_cards(start, id="first")[0]
    assert "<p>one</p>" in first.html and first.get() == first.html
    assert Path(first.path).read_text() == first.html  # the local datastore holds the file itself
    assert len(first.hash) == 16 and first.attempt == 0
    assert first._repr_html_().startswith("<iframe srcdoc=") and "&lt;p&gt;one&lt;/p&gt;" in first._repr_html_()
    assert "ambiguous" not in first.html and "cannot tell which" in start.stderr


def test_resumed_tasks_find_their_cards_where_they_first_ran(flow_env, write_flow, python_flow):
    path = write_flow("two.py", TWO_CARDS)
    origin = _run(python_flow, path)
    resumed = python_flow(path, "resume", "end", "--origin-run-id", origin)
    assert resumed.returncode == 0, resumed.stderr
    start = _task("TwoCards", run_id_of(resumed.stdout), "start")
    assert start.origin_pathspec is not None
    cards = get_cards(start, id="first")
    assert cards.from_resumed and cards.origin_pathspec == start.origin_pathspec
    assert "<p>one</p>" in cards[0].html
    assert len(get_cards(start, follow_resumed=False)) == 0


def test_run_with_card_gives_every_step_a_default_card(flow_env, python_flow):
    hello = Path(__file__).resolve().parents[2] / "examples" / "hello.py"
    result = python_flow(hello, "run", "--with", "card")
    assert result.returncode == 0, result.stderr
    client.namespace(None)
    run = Flow("HelloFlow")[run_id_of(result.stdout)]
    for step in run:
        (card,) = get_cards(step.task)
        assert card.type == "default" and step.task.pathspec in card.html


@pytest.mark.parametrize("attributes, says", [
    ("options=[1]", "@card on step start: options must be a dict"),
    ("timeout='soon'", "@card on step start: timeout must be a number of seconds"),
])
def test_bad_card_attributes_stop_the_run_before_it_starts(flow_env, write_flow, python_flow, attributes, says):
    path = write_flow("bad.py", f'''
        from flow_core import FlowSpec, card, step

        class Bad(FlowSpec):
            @card({attributes})
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            Bad()
    ''')
    result = python_flow(path, "run")
    assert result.returncode == 1 and says in result.stderr


MORE_COMPONENTS = '''
import json
import matplotlib
matplotlib.use("Agg")
from matplotlib import patches, pyplot
from PIL import Image as PILImage
from flow_core import FlowSpec, card, current, step
from flow_core.cards import (EventsTimeline, Image, JSONViewer, Markdown, PythonCode, ValueBox, YAMLViewer)


def tokens(text):
    """Split text into words."""
    return text.split()


class MoreComponents(FlowSpec):
    @card(type="blank", options={"title": "Everything else"})
    @step
    def start(self):
        drawn = PILImage.new("RGB", (30, 20), (0, 0, 255))
        drawn.putpixel((3, 4), (255, 0, 0))
        current.card.append(Image.from_pil_image(drawn, label="From PIL"))
        figure = pyplot.figure(figsize=(2, 1), dpi=40, facecolor="#00ff00")
        axes = figure.add_axes((0.5, 0, 0.5, 1))
        axes.set_axis_off()
        axes.add_patch(patches.Rectangle((0, 0), 1, 1, color="#ff0000"))
        current.card.append(Image.from_matplotlib(axes, label="From matplotlib"))
        current.card.append(PythonCode(tokens))
        current.card.append(JSONViewer({"lr": 0.01, "layers": [64, 32]}, title="Hyperparameters"))
        current.card.append(YAMLViewer({"db": {"host": "localhost", "port": 5432}}, collapsible=False))
        revenue = ValueBox(title="Revenue", value="$1.0M", theme="success")
        current.card.append(revenue)
        revenue.update(value="$1.2M", change_indicator="Up 20%")
        events = EventsTimeline(title="Steps")
        current.card.append(events)
        events.update({"action": "load", "rows": 120})
        events.update({"action": "train"}, style_theme="success", payloads={"notes": Markdown("**converged**")},
                      finished=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MoreComponents()
'''


def test_metaflows_other_components_and_real_images_render_offline_in_a_browser(flow_env, write_flow, python_flow,
                                                                               offline_page, tmp_path):
    run_id = _run(python_flow, write_flow("more.py", MORE_COMPONENTS))
    (card,) = get_cards(_task("MoreComponents", run_id, "start"))
    page = offline_page
    _open(page, card.html, tmp_path / "more.html")
    assert page.locator("h1").inner_text() == "Everything else"

    # The PNGs the browser decodes have the drawn size and pixels.
    pixels = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
        c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
        return [img.naturalWidth, img.naturalHeight, at(3, 4), at(0, 0), at(10, 20), at(70, 20)]; }"""
    pil, plot = page.locator(".flow-image img").element_handles()
    width, height, red, blue, _, _ = page.evaluate(pixels, pil)
    assert (width, height, red, blue) == (30, 20, [255, 0, 0], [0, 0, 255])
    width, height, _, _, green, red = page.evaluate(pixels, plot)
    assert (width, height, green, red) == (80, 40, [0, 255, 0], [255, 0, 0])
    assert page.locator(".flow-image figcaption").all_inner_texts() == ["From PIL", "From matplotlib"]

    code = page.locator(".flow-code")
    assert code.locator(".flow-py-def").inner_text() == "tokens"
    assert code.locator(".flow-py-str").inner_text() == '"""Split text into words."""'
    assert code.locator("pre").inner_text().startswith("def tokens(text):")
    viewer = page.locator(".flow-json-viewer")
    assert viewer.locator("summary").inner_text().startswith("Hyperparameters")
    assert json.loads(viewer.locator("pre").inner_text()) == {"lr": 0.01, "layers": [64, 32]}
    viewer.locator("summary").click()  # collapsible: a click folds it
    assert not viewer.locator("pre").is_visible()
    assert page.locator(".flow-yaml-viewer pre").inner_text().splitlines() == ["db:", "  host: localhost",
                                                                                "  port: 5432"]
    box = page.locator(".flow-value-box")
    assert box.locator(".flow-value-box-value").inner_text() == "$1.2M"
    assert box.locator(".flow-value-box-change").inner_text() == "Up 20%"
    events = page.locator(".flow-event")
    assert events.count() == 2 and "train" in events.nth(0).inner_text() and "load" in events.nth(1).inner_text()
    assert page.locator(".flow-timeline-status").inner_text() == "Finished"
    events.nth(0).locator("summary").click()
    assert events.nth(0).locator(".flow-markdown strong").inner_text() == "converged"
    page.screenshot(path=str(tmp_path / "more-components.png"), full_page=True)
    assert page.left_machine == [] and page.console_errors == []
