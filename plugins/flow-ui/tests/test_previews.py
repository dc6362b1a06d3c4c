"""Previews are bounded and typed without a real pandas or a large value; images are drawn with\nthe real PIL and matplotlib."""

from __future__ import annotations

from flow_ui.previews import artifact_preview, preview_html, short_repr


class FakeFrame:
    """What the preview asks of a DataFrame, and no more (the browser test previews a real one)."""

    columns = ["city", "<b>population</b>"]
    shape = (1000, 2)

    def head(self, rows):
        assert rows == 10
        return self

    def to_html(self, **options):
        return "<table class='dataframe'><tr><th>city</th><th>&lt;b&gt;population&lt;/b&gt;</th></tr></table>"


def test_dataframe_head_as_a_table():
    html = preview_html(FakeFrame())
    assert "<table class='dataframe'>" in html and "shape (1000, 2)" in html and "first 10 rows" in html


def test_images_and_bounded_reprs():
    assert 'src="data:image/jpeg;base64,' in preview_html(b"\xff\xd8\xff\xe0" + b"0" * 20)
    assert preview_html(b"plain bytes").startswith("<pre>b&#x27;plain")
    long = short_repr(list(range(100_000)))
    assert len(long) < 1000 and long.endswith("...]")
    assert "&lt;script&gt;" in preview_html("<script>alert(1)</script>")


def _embedded_png(html: str):
    import base64
    import io

    from PIL import Image

    assert 'src="data:image/png;base64,' in html
    data = html.split("base64,", 1)[1].split('"', 1)[0]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_pil_images_and_matplotlib_figures_are_drawn():
    """Real libraries, as a step would store them: the preview is the picture, not a repr."""
    from PIL import Image

    picture = Image.new("RGB", (30, 20), (200, 10, 10))
    shown = _embedded_png(preview_html(picture))
    assert shown.size == (30, 20) and shown.convert("RGB").getpixel((5, 5)) == (200, 10, 10)

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    assert _embedded_png(preview_html(figure)).size == (100, 50)


def test_large_artifacts_are_not_loaded():
    class Big:
        size = 10 * 1024 * 1024

        @property
        def data(self):
            raise AssertionError("a large artifact was loaded")

    assert "too large to preview" in artifact_preview(Big(), limit=1024)


def test_an_artifact_that_cannot_be_loaded_says_why():
    class Unloadable:
        size = 10

        @property
        def data(self):
            raise ModuleNotFoundError("No module named 'mymodels'")

    assert "cannot be loaded here: ModuleNotFoundError" in artifact_preview(Unloadable(), limit=1024)
