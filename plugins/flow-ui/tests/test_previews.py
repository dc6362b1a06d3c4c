"""Previews are bounded and typed without a real pandas or a large value."""

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
