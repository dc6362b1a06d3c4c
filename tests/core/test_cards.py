"""Cards without a run: components, the page, ``current.card``'s rules, and card keys."""

from __future__ import annotations

from flow_core.backends.local_storage import LocalStorage
from flow_core.cards import Image, Markdown, ProgressBar, Table, VegaChart
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


PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
                        "53de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082")


class FakePilImage:
    """What Image.from_pil_image uses of a PIL image: save(buffer, format=)."""

    def save(self, buffer, format):
        assert format == "PNG"
        buffer.write(PNG_1x1)


class FakeAxes:
    """What Image.from_matplotlib uses of an Axes: get_figure().savefig(buffer, format=)."""

    class Figure:
        def savefig(self, buffer, format):
            assert format == "png"
            buffer.write(PNG_1x1)

    def get_figure(self):
        return self.Figure()


def test_images_from_pil_and_matplotlib_objects_are_embedded_as_png():
    for image in (Image.from_pil_image(FakePilImage(), label="pil"), Image.from_matplotlib(FakeAxes(), "plot"),
                  Image.from_matplotlib(FakeAxes.Figure())):
        assert 'src="data:image/png;base64,iVBORw0KGgo' in render_component(image)
    assert "could not be saved as PNG" in render_component(Image.from_pil_image(object()))


def test_the_page_carries_vega_only_with_a_chart():
    plain = render_page("t", [Markdown("# hi")])
    charted = render_page("t", [VegaChart({"mark": "bar"})])
    assert "vegaEmbed" not in plain and "vegaEmbed" in charted and "sourceMappingURL" not in charted
    assert 'data-card-status="final"' in plain
    running = render_page("t", [], status="running")
    assert 'data-card-status="running"' in running and 'http-equiv="refresh"' in running
