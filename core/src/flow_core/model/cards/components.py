"""The components a step puts on a card, with Metaflow's names and signatures.

Each component renders itself to an HTML fragment on the server side, so a stored card is
plain HTML that needs no script to show, except a `VegaChart`, whose page carries the
vendored Vega scripts. A component that fails to render shows why in its place; it never
takes the card, let alone the task, down with it.
"""

from __future__ import annotations

import base64
import io
import sys
import textwrap
from typing import Any, Iterable, Optional

from flow_core.model.cards.markup import (
    error_block,
    escape,
    exception_text,
    full_type_name,
    script_json,
    short_repr,
)

#: Rows `Table.from_dataframe` shows of a large frame unless told not to truncate.
MAX_DATAFRAME_ROWS = 100
#: The attribute a rendered chart carries; the page adds the Vega scripts when it sees it.
VEGA_MARKER = "data-flow-vega"


class MetaflowCardComponent:
    """Base of every card component: ``render()`` returns an HTML fragment.

    Write your own by subclassing and returning HTML from ``render``; escape what you did not
    write yourself (``html.escape``)."""

    #: Whether ``update`` changes what a refreshed card shows.
    REALTIME_UPDATABLE = False
    component_id: Optional[str] = None

    def render(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} does not define render()")

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Components that can change while the task runs override this."""


#: Flow's own name for the base class.
CardComponent = MetaflowCardComponent


def render_component(component: Any) -> str:
    """The component's HTML, or an error block saying why it could not render."""
    name = type(component).__name__
    if not isinstance(component, MetaflowCardComponent):
        return error_block(f"{name} is not a card component",
                           "Append a component of flow_core.cards (Markdown, Table, Image, ValueBox, ...) "
                           "or a subclass of MetaflowCardComponent.")
    try:
        rendered = component.render()
    except Exception as exc:
        return error_block(f"The {name} component failed to render", exception_text(exc))
    if not isinstance(rendered, str):
        return error_block(f"The {name} component failed to render",
                           f"render() returned {type(rendered).__name__}, not an HTML string.")
    return rendered


def _cell(value: Any) -> str:
    if isinstance(value, MetaflowCardComponent):
        return render_component(value)
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return escape(value)
    return f"<code>{escape(short_repr(value))}</code>"


class Markdown(MetaflowCardComponent):
    """Text in Markdown (CommonMark with tables and strikethrough); raw HTML is shown as text.
    Indentation common to every line is removed, so an indented triple-quoted string works."""

    REALTIME_UPDATABLE = True

    def __init__(self, text: Optional[str] = None):
        self._text = textwrap.dedent(text) if text is not None else None

    def update(self, text: Optional[str] = None) -> None:
        self._text = textwrap.dedent(text) if text is not None else None

    def render(self) -> str:
        from markdown_it import MarkdownIt

        parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
        return f'<div class="flow-markdown">{parser.render(self._text or "")}</div>'


class Table(MetaflowCardComponent):
    """Rows of cells; a cell is text, a number or another component."""

    REALTIME_UPDATABLE = True

    def __init__(self, data: Optional[list[list[Any]]] = None, headers: Optional[list[str]] = None,
                 disable_updates: bool = False):
        self._data = [list(row) for row in (data or [])]
        self._headers = [str(h) for h in (headers or [])]
        self._note = ""
        if disable_updates:
            self.REALTIME_UPDATABLE = False

    @classmethod
    def from_dataframe(cls, dataframe: Any = None, truncate: bool = True) -> "Table":
        """A table of a pandas DataFrame: its columns as headers and its index as the first
        column; past 100 rows, the first 100 and a note of how many more."""
        if not (hasattr(dataframe, "columns") and hasattr(dataframe, "itertuples")):
            return cls(headers=[f"Object type {full_type_name(dataframe)} not supported"], disable_updates=True)
        total = len(dataframe)
        shown = dataframe.head(MAX_DATAFRAME_ROWS) if truncate else dataframe
        index_name = dataframe.index.name if dataframe.index.name is not None else ""
        headers = [str(index_name)] + [str(column) for column in dataframe.columns]
        rows = [[_plain(value) for value in row] for row in shown.itertuples(index=True, name=None)]
        table = cls(data=rows, headers=headers, disable_updates=True)
        if len(rows) < total:
            table._note = f"Showing the first {len(rows)} of {total} rows."
        return table

    def update(self, *args: Any, **kwargs: Any) -> None:
        """A table is replaced, not updated: update the components inside it instead."""

    def render(self) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in self._headers)
        body = "".join("<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>"
                       for row in self._data)
        note = f'<div class="flow-note">{escape(self._note)}</div>' if self._note else ""
        head_html = f"<thead><tr>{head}</tr></thead>" if head else ""
        return f'<div class="flow-table-wrap"><table class="flow-table">{head_html}<tbody>{body}</tbody></table>{note}</div>'


def _plain(value: Any) -> Any:
    """A DataFrame cell as a plain Python value (numpy scalars to their Python twins)."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return value


def image_type(data: bytes) -> Optional[str]:
    """The MIME type of image bytes, from their first bytes; None if not an image a browser shows."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


class Image(MetaflowCardComponent):
    """An image embedded in the card: PNG, JPEG, GIF, WebP or SVG bytes, or a ``data:image/…``
    URI; `from_pil_image` and `from_matplotlib` make one from those libraries' objects."""

    REALTIME_UPDATABLE = True

    def __init__(self, src: Any = None, label: Optional[str] = None, disable_updates: bool = True):
        if disable_updates:
            self.REALTIME_UPDATABLE = False
        self._set(src, label)

    def _set(self, src: Any, label: Optional[str]) -> None:
        self._label = label
        self._src: Optional[str] = None
        self._problem: Optional[tuple[str, str]] = None
        if src is None:
            self._problem = ("The Image has no source", "Image(src) needs image bytes or a data:image/ URI.")
        elif isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
            mime = image_type(data)
            if mime is None:
                self._problem = ("The Image's bytes are not an image",
                                 "Give PNG, JPEG, GIF, WebP or SVG bytes.")
            else:
                self._src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        elif isinstance(src, str) and src.startswith("data:image/"):
            self._src = src
        else:
            self._problem = (f"The Image cannot show a {full_type_name(src)}",
                             "Give image bytes, a data:image/ URI, or use Image.from_pil_image / "
                             "Image.from_matplotlib.")

    @classmethod
    def from_pil_image(cls, pilimage: Any, label: Optional[str] = None, disable_updates: bool = False) -> "Image":
        """An image of a PIL image (stored as PNG)."""
        image = cls(None, label, disable_updates)
        try:
            buffer = io.BytesIO()
            pilimage.save(buffer, format="PNG")
            image._set(buffer.getvalue(), label)
        except Exception as exc:
            image._problem = ("The PIL image could not be saved as PNG", exception_text(exc))
        return image

    @classmethod
    def from_matplotlib(cls, plot: Any, label: Optional[str] = None, disable_updates: bool = False) -> "Image":
        """An image of a matplotlib figure, or of the figure an Axes belongs to (as PNG)."""
        image = cls(None, label, disable_updates)
        try:
            figure = plot if hasattr(plot, "savefig") else plot.get_figure()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
            image._set(buffer.getvalue(), label)
            pyplot = sys.modules.get("matplotlib.pyplot")
            if pyplot is not None:  # as Metaflow: the figure is in the card now, so pyplot lets it go
                pyplot.close(figure)
        except Exception as exc:
            image._problem = ("The matplotlib plot could not be saved as PNG", exception_text(exc))
        return image

    def update(self, image: Any, label: Optional[str] = None) -> None:
        if not self.REALTIME_UPDATABLE:
            return
        label = label if label is not None else self._label
        if isinstance(image, (bytes, bytearray, memoryview, str)):
            self._set(image, label)
        elif hasattr(image, "savefig") or hasattr(image, "get_figure"):
            self.__dict__.update(Image.from_matplotlib(image, label).__dict__)
        else:
            self.__dict__.update(Image.from_pil_image(image, label).__dict__)
        self.REALTIME_UPDATABLE = True

    def render(self) -> str:
        if self._problem is not None:
            return error_block(*self._problem)
        caption = f"<figcaption>{escape(self._label)}</figcaption>" if self._label else ""
        alt = escape(self._label or "image")
        return f'<figure class="flow-image"><img src="{self._src}" alt="{alt}">{caption}</figure>'


class VegaChart(MetaflowCardComponent):
    """A Vega or Vega-Lite chart from its spec (a dict, or an Altair chart through
    `from_altair_chart`), drawn by the Vega scripts the card carries inline."""

    REALTIME_UPDATABLE = True

    def __init__(self, spec: dict, show_controls: bool = False):
        self._spec = spec
        self._show_controls = show_controls

    @classmethod
    def from_altair_chart(cls, altair_chart: Any) -> "VegaChart":
        if not hasattr(altair_chart, "to_dict"):
            raise ValueError(f"{full_type_name(altair_chart)} is not an altair chart")
        return cls(spec=altair_chart.to_dict())

    def update(self, spec: Any = None) -> None:
        if spec is not None:
            self._spec = spec.to_dict() if hasattr(spec, "to_dict") else spec

    def render(self) -> str:
        spec = dict(self._spec)
        if "width" not in spec and "$schema" in spec and "vega-lite" in str(spec["$schema"]):
            spec["width"] = "container"
        options = {"actions": bool(self._show_controls), "renderer": "svg"}
        return (f'<div class="flow-vega" {VEGA_MARKER}>'
                f'<script type="application/json" class="flow-vega-spec">{script_json(spec)}</script>'
                f'<script type="application/json" class="flow-vega-options">{script_json(options)}</script>'
                '<div class="flow-vega-chart"></div></div>')


class ProgressBar(MetaflowCardComponent):
    """How far something has come; ``update(value)`` then ``current.card.refresh()`` shows it live."""

    REALTIME_UPDATABLE = True

    def __init__(self, max: int = 100, label: Optional[str] = None, value: int = 0, unit: Optional[str] = None,
                 metadata: Optional[str] = None):
        self._max = max
        self._label = label
        self._value = value
        self._unit = unit
        self._metadata = metadata

    def update(self, new_value: int, metadata: Optional[str] = None) -> None:
        self._value = new_value
        if metadata is not None:
            self._metadata = metadata

    def render(self) -> str:
        unit = f" {self._unit}" if self._unit else ""
        label = f'<span class="flow-progress-label">{escape(self._label)}</span>' if self._label else ""
        details = f'<span class="flow-progress-details">{escape(self._metadata)}</span>' if self._metadata else ""
        return (f'<div class="flow-progress">{label}'
                f'<progress max="{escape(self._max)}" value="{escape(self._value)}"></progress>'
                f'<span class="flow-progress-value">{escape(self._value)} / {escape(self._max)}{escape(unit)}</span>'
                f"{details}</div>")


class Artifact(MetaflowCardComponent):
    """Any Python value, shown by its type and (shortened unless ``compressed=False``) repr."""

    REALTIME_UPDATABLE = True

    def __init__(self, artifact: Any, name: Optional[str] = None, compressed: bool = True):
        self._artifact = artifact
        self._name = name
        self._compressed = compressed

    def update(self, artifact: Any) -> None:
        self._artifact = artifact

    def render(self) -> str:
        text = short_repr(self._artifact) if self._compressed else repr(self._artifact)
        name = f'<span class="flow-artifact-name">{escape(self._name)}</span>' if self._name else ""
        kind = f'<span class="flow-artifact-type">{escape(full_type_name(self._artifact))}</span>'
        return f'<div class="flow-artifact">{name}{kind}<pre>{escape(text)}</pre></div>'


class Error(MetaflowCardComponent):
    """An exception shown on the card, with an optional title."""

    def __init__(self, exception: BaseException, title: Optional[str] = None):
        self._exception = exception
        self._title = title

    def render(self) -> str:
        return error_block(self._title or type(self._exception).__name__, repr(self._exception))


class Section(MetaflowCardComponent):
    """A titled group of components (the default card's parts)."""

    def __init__(self, title: str, contents: Iterable[Any]):
        self._title = title
        self._contents = list(contents)

    def render(self) -> str:
        inner = "".join(render_component(c) for c in self._contents)
        return f'<section class="flow-section"><h2>{escape(self._title)}</h2>{inner}</section>'


class PageComponent(MetaflowCardComponent):
    """A titled page part for a custom card type: its contents are components, or HTML strings
    already rendered (such as the ``components`` a `MetaflowCard` is given)."""

    def __init__(self, title: Optional[str] = None, subtitle: Optional[str] = None, contents: Iterable[Any] = ()):
        self._title = title
        self._subtitle = subtitle
        self._contents = list(contents)

    def render(self) -> str:
        inner = "".join(c if isinstance(c, str) else render_component(c) for c in self._contents)
        title = f"<h2>{escape(self._title)}</h2>" if self._title else ""
        subtitle = f'<div class="flow-subtitle">{escape(self._subtitle)}</div>' if self._subtitle else ""
        return f'<section class="flow-section flow-page">{title}{subtitle}{inner}</section>'


class Html(MetaflowCardComponent):
    """HTML Flow wrote itself (the graph's picture); not for user text, which it does not escape."""

    def __init__(self, markup: str):
        self._markup = markup

    def render(self) -> str:
        return self._markup
