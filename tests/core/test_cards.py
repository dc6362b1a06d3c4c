"""Cards without a run: components, the page, ``current.card``'s rules, and card keys."""

from __future__ import annotations

import base64
import html as htmllib
import io
import json
import re
import threading

import pytest
import yaml
from flow_core.backends.local_storage import LocalStorage
from flow_core.cards import (
    EventsTimeline,
    Image,
    JSONViewer,
    Markdown,
    ProgressBar,
    PythonCode,
    Table,
    ValueBox,
    VegaChart,
    YAMLViewer,
)
from flow_core.datastore.card_store import (
    TaskCardWriter,
    cards_of_run,
    filter_cards,
    list_cards,
    parse_card_key,
    read_card,
)
from flow_core.model.cards.card_slot import CardSlot
from flow_core.model.cards.collector import CardComponentCollector, CardManager
from flow_core.model.cards.components import render_component
from flow_core.model.cards.page import render_page
from PIL import Image as PILImage

PATHSPEC = "Flow/7/train/12"


def test_card_keys_name_the_card_and_list_in_decorator_order(tmp_path):
    storage = LocalStorage(tmp_path)
    first_attempt = TaskCardWriter(storage, PATHSPEC, 0)
    first_attempt.write(CardSlot(0, "default"), "<p>zero</p>")
    retried = TaskCardWriter(storage, PATHSPEC, 1)
    retried.write(CardSlot(1, "blank", "plots"), "<p>plots</p>")
    retried.write(CardSlot(0, "default"), "<p>old</p>")
    retried.write(CardSlot(0, "default"), "<p>new</p>")  # a refresh replaces the card in place
    cards = list_cards(storage, PATHSPEC)  # the latest attempt with cards
    assert [(c.attempt, c.index, c.type, c.id) for c in cards] == [(1, 0, "default", None), (1, 1, "blank", "plots")]
    assert read_card(storage, cards[0]) == "<p>new</p>"
    assert [c.attempt for c in list_cards(storage, PATHSPEC, attempt=0)] == [0]
    assert cards[0].key.startswith("flows/Flow/7/train/12/cards/1/0-default-")
    assert parse_card_key(PATHSPEC, cards[1].key) == cards[1]
    assert parse_card_key(PATHSPEC, "flows/Flow/7/train/12/1.index") is None
    assert filter_cards(cards, id="plots") == [cards[1]]
    assert filter_cards(cards, hash=cards[0].hash[:5]) == [cards[0]]
    assert cards[0].hash != cards[1].hash and list_cards(storage, "Flow/7/train/13") == []

    # A whole run's cards from one listing, as a page of many tasks needs them.
    TaskCardWriter(storage, "Flow/7/start/3", 0).write(CardSlot(0, "blank"), "<p>start</p>")
    storage.put("flows/Flow/7/start/3/0.index", b"not a card")
    assert cards_of_run(storage, "Flow", "7") == {PATHSPEC: cards, "Flow/7/start/3": list_cards(storage, "Flow/7/start/3")}
    assert list(cards_of_run(storage, "Flow", "7", "train")) == [PATHSPEC] and cards_of_run(storage, "Flow", "8") == {}


def test_current_card_follows_metaflows_rules_for_which_card_is_meant(capsys):
    rendered = []
    collector = CardComponentCollector()
    only = CardManager(CardSlot(0, "default"), rendered.append)
    collector._add_card(only)
    collector.append(Markdown("a"))
    assert len(only) == 1 and collector.components is only.components

    collector = CardComponentCollector()
    first = CardManager(CardSlot(0, "blank", "first"), rendered.append)
    second = CardManager(CardSlot(1, "blank", "second"), rendered.append)
    collector._add_card(first)
    collector._add_card(second)
    collector.append(Markdown("which?"))
    collector.append(Markdown("still which?"))
    assert capsys.readouterr().err.count("[@card WARNING]") == 1  # warned once
    assert all("cannot tell which" in render_component(list(c)[0]) for c in (first, second))
    collector["second"].append(Markdown("b"))
    assert len(second) == 2 and "second" in collector and "third" not in collector
    assert collector["third"] == []
    collector["first"] = [Markdown("x"), Markdown("y")]
    assert [render_component(c) for c in collector["first"]] == ['<div class="flow-markdown"><p>x</p>\n</div>',
                                                                 '<div class="flow-markdown"><p>y</p>\n</div>']


def test_refresh_stores_the_card_at_most_once_per_interval_unless_forced():
    rendered = []
    manager = CardManager(CardSlot(0, "default"), rendered.append, refresh_interval=3600)
    manager.refresh()
    manager.refresh()
    assert len(rendered) == 1
    manager.refresh(force=True)
    assert len(rendered) == 2


def test_a_refresh_sooner_than_the_interval_is_stored_when_the_interval_is_over():
    stored = threading.Event()
    rendered = []

    def render(slot):
        rendered.append(slot)
        if len(rendered) == 2:
            stored.set()

    manager = CardManager(CardSlot(0, "blank"), render, refresh_interval=0.2)
    manager.refresh(data={"step": 1})
    manager.refresh(data={"step": 2})  # too soon: not lost, but stored when the interval is over
    assert len(rendered) == 1
    assert stored.wait(60)
    assert manager.latest_data(final=False, mode="render_runtime")["user"] == {"step": 2}
    manager.close()
    manager.refresh(force=True)  # the task is over: the final card follows, no more live ones
    assert len(rendered) == 2


def test_append_goes_only_to_a_card_whose_type_allows_components(capsys):
    collector = CardComponentCollector()
    custom = CardManager(CardSlot(0, "scores"), list().append, editable=False)
    blank = CardManager(CardSlot(1, "blank", "notes"), list().append)
    collector._add_card(custom)
    collector._add_card(blank)
    collector.append(Markdown("note"))
    assert len(blank) == 1 and len(custom) == 0 and capsys.readouterr().err == ""


def test_components_say_what_is_wrong_in_their_place():
    assert "not an image" in render_component(Image(b"plain text"))
    assert "has no source" in render_component(Image(None))
    assert "<td>1</td>" in render_component(Table([[1, None, Markdown("*m*")]]))
    assert "Object type list not supported" in render_component(Table.from_dataframe([1, 2]))
    assert "raw &lt;b&gt;" in render_component(Markdown("raw <b>"))  # raw HTML in Markdown is text
    bar = ProgressBar(max=8, value=2, unit="files")
    bar.update(6)
    assert 'value="6"' in render_component(bar) and "6 / 8 files" in render_component(bar)
    chart = render_component(VegaChart({"title": "</script><script>alert(1)</script>"}))
    assert "</script><script>" not in chart and "\\u003c/script\\u003e" in chart


def _png_of(image) -> PILImage.Image:
    """The PNG an Image component embeds, decoded."""
    html = render_component(image)
    src = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert src, html
    return PILImage.open(io.BytesIO(base64.b64decode(src.group(1))))


def test_a_real_pil_image_is_embedded_as_a_png_with_its_pixels():
    drawn = PILImage.new("RGB", (30, 20), (0, 0, 255))
    drawn.putpixel((3, 4), (255, 0, 0))
    shown = _png_of(Image.from_pil_image(drawn, label="pil"))
    assert shown.format == "PNG" and shown.size == (30, 20)
    assert shown.convert("RGB").getpixel((3, 4)) == (255, 0, 0) and shown.convert("RGB").getpixel((0, 0)) == (0, 0, 255)
    assert "could not be saved as PNG" in render_component(Image.from_pil_image(object()))


def _green_figure_with_a_red_right_half():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import patches, pyplot

    figure = pyplot.figure(figsize=(2, 1), dpi=40, facecolor="#00ff00")
    axes = figure.add_axes((0.5, 0, 0.5, 1))
    axes.set_axis_off()
    axes.add_patch(patches.Rectangle((0, 0), 1, 1, color="#ff0000"))
    return pyplot, figure, axes


def test_a_real_matplotlib_figure_and_its_axes_are_embedded_as_pngs_of_the_drawing():
    for which in ("figure", "axes"):
        pyplot, figure, axes = _green_figure_with_a_red_right_half()
        shown = _png_of(Image.from_matplotlib(figure if which == "figure" else axes, label="plot")).convert("RGB")
        assert shown.size == (80, 40)  # 2 x 1 inches at 40 dpi
        assert shown.getpixel((10, 20)) == (0, 255, 0) and shown.getpixel((70, 20)) == (255, 0, 0)
        assert figure.number not in pyplot.get_fignums()  # the card has it: pyplot lets it go, as in Metaflow
    assert "could not be saved as PNG" in render_component(Image.from_matplotlib(object()))


def _shown_code(html: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", "", re.search(r"<pre[^>]*>(.*)</pre>", html, re.S).group(1)))


def test_python_code_is_highlighted_from_a_function_or_a_string():
    def scale(values, factor=2):
        # double by default
        return [v * factor for v in values if v is not None]

    html = render_component(PythonCode(scale))
    assert '<span class="flow-py-kw">def</span> <span class="flow-py-def">scale</span>' in html
    assert '<span class="flow-py-com"># double by default</span>' in html and '<span class="flow-py-num">2</span>' in html
    assert _shown_code(html).startswith("def scale(values, factor=2):\n    # double")  # dedented, intact
    assert '<span class="flow-py-str">&quot;&lt;/pre&gt;&quot;</span>' in render_component(
        PythonCode(code_string='x = "</pre>"'))
    assert "PythonCode has no code" in render_component(PythonCode())
    assert _shown_code(render_component(PythonCode(code_string="def broken(:\n  ("))) == "def broken(:\n  ("


def test_json_and_yaml_viewers_show_data_that_reads_back_the_same():
    data = {"model": {"layers": [64, 32], "dropout": 0.1, "name": "net: v2", "tags": []}, "ok": True,
            "notes": None, "yes": "no", "items": [{"id": 1, "label": "a"}, {"id": 2, "label": "multi\nline"}]}
    shown_json = render_component(JSONViewer(data, title="Config"))
    assert json.loads(_shown_code(shown_json)) == data and "<summary>Config" in shown_json
    assert "<details open>" in shown_json  # collapsible by default
    assert json.loads(_shown_code(render_component(JSONViewer('{"a": [1, 2]}')))) == {"a": [1, 2]}
    yaml_view = YAMLViewer(data, collapsible=False, max_height="200px")
    shown_yaml = render_component(yaml_view)
    assert yaml.safe_load(_shown_code(shown_yaml)) == data
    assert "<details" not in shown_yaml and "max-height: 200px" in shown_yaml
    yaml_view.update({"epoch": 3})
    assert _shown_code(render_component(yaml_view)) == "epoch: 3\n"
    sneaky = render_component(JSONViewer({}, max_height="1px; background: url(http://x)"))
    assert "url(" not in sneaky.split("<pre")[1].split(">")[0] and "is not a CSS length" in sneaky


def test_value_box_checks_its_arguments_as_metaflow_does_and_updates():
    box = ValueBox(title="Revenue", value="$1.2M", subtitle="Monthly", theme="success", change_indicator="Up 15%")
    html = render_component(box)
    assert 'class="flow-value-box flow-theme-success"' in html and ">$1.2M<" in html and ">Up 15%<" in html
    box.update(value=42, change_indicator="Up 20%")
    html = render_component(box)
    assert ">42<" in html and ">Up 20%<" in html and ">Revenue<" in html  # what was not given stays
    for bad, error in [({"value": None}, ValueError), ({"value": [1]}, TypeError), ({"value": "x", "title": ""}, ValueError),
                       ({"value": "x", "theme": "not a class!"}, ValueError), ({"value": 1e16}, ValueError)]:
        with pytest.raises(error):
            ValueBox(**bad)


def test_events_timeline_shows_the_latest_events_first_and_counts_them_all():
    timeline = EventsTimeline(title="Agent", max_events=2)
    timeline.update({"action": "plan"})
    timeline.update({"action": "call", "timestamp": "12:00"}, style_theme="tool_call", priority="high",
                    payloads={"args": JSONViewer({"city": "Oslo"}), "note": Markdown("**ok**")})
    timeline.update({"action": "answer"}, style_theme="success", finished=True)
    html = render_component(timeline)
    assert re.findall(r"<dd>([^<]*)</dd>", html) == ["answer", "call"]  # newest first, the oldest dropped
    assert "3 events · showing the latest 2" in html and 'data-status="finished"' in html
    assert "flow-theme-tool_call flow-priority-high" in html and "<time class=\"flow-event-time\">12:00</time>" in html
    assert "<summary>args</summary>" in html and "<strong>ok</strong>" in html
    assert timeline.get_stats()["total_events"] == 3 and timeline.get_stats()["displayed_events"] == 2
    with pytest.raises(TypeError, match="Payload 'chart'"):
        timeline.update({"a": 1}, payloads={"chart": VegaChart({})})
    with pytest.raises(ValueError):
        timeline.update({"a": 1}, style_theme="no spaces allowed")


def test_the_page_carries_vega_only_with_a_chart():
    plain = render_page("t", [Markdown("# hi")])
    charted = render_page("t", [VegaChart({"mark": "bar"})])
    assert "vegaEmbed" not in plain and "vegaEmbed" in charted and "sourceMappingURL" not in charted
    assert 'data-card-status="final"' in plain
    running = render_page("t", [], status="running")
    assert 'data-card-status="running"' in running and 'http-equiv="refresh"' in running
