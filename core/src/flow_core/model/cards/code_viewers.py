"""Components that show text in a language: `PythonCode` (highlighted source), `JSONViewer`
and `YAMLViewer` (data, pretty-printed), with Metaflow's names and arguments.

Highlighting happens here, on the server side, with the standard library's tokenizer, so the
card needs no script or stylesheet from anywhere to show colours.
"""

from __future__ import annotations

import inspect
import io
import json
import keyword
import re
import textwrap
import token
import tokenize
from typing import Any, Callable, Optional

from flow_core.model.cards.components import MetaflowCardComponent
from flow_core.model.cards.markup import error_block, escape

#: A CSS length a viewer's ``max_height`` may be; anything else could smuggle other CSS in.
CSS_LENGTH = re.compile(r"^\d+(\.\d+)?(px|rem|em|vh|%)$")
_STRING_TOKENS = {token.STRING, *(getattr(token, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END",
                                                                       "TSTRING_START", "TSTRING_MIDDLE", "TSTRING_END")
                                  if hasattr(token, name))}


def highlight_python(source: str) -> str:
    """``source`` as HTML with keywords, names being defined, strings, numbers and comments in
    spans; source the tokenizer cannot read is shown plain."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return escape(source)
    out, position, defining = [], 0, False
    for tok in tokens:
        if tok.type in (token.ENDMARKER, token.DEDENT, token.INDENT, token.NEWLINE, token.NL) or not tok.string:
            continue
        begin = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        out.append(escape(source[position:begin]))
        css = _token_class(tok, defining)
        text = escape(source[begin:end])
        out.append(f'<span class="flow-py-{css}">{text}</span>' if css else text)
        defining = tok.type == token.NAME and tok.string in ("def", "class")
        position = end
    out.append(escape(source[position:]))
    return "".join(out)


def _token_class(tok: tokenize.TokenInfo, defining: bool) -> str:
    if tok.type == token.NAME:
        if defining:
            return "def"
        if keyword.iskeyword(tok.string) or tok.string in ("self", "cls"):
            return "kw"
        return "builtin" if tok.string in ("print", "len", "range", "True", "False", "None") else ""
    if tok.type in _STRING_TOKENS:
        return "str"
    if tok.type == token.NUMBER:
        return "num"
    if tok.type == token.COMMENT:
        return "com"
    return ""


class PythonCode(MetaflowCardComponent):
    """Python source with syntax highlighting: of a function (``code_func``, its source read
    with ``inspect``) or a string (``code_string``)."""

    def __init__(self, code_func: Optional[Callable[..., Any]] = None, code_string: Optional[str] = None):
        self._problem: Optional[str] = None
        self._code: Optional[str] = None
        if code_func is not None:
            try:
                self._code = inspect.getsource(code_func)
            except (OSError, TypeError) as exc:
                self._problem = f"the source of {code_func!r} cannot be read: {exc}"
        else:
            self._code = code_string

    def render(self) -> str:
        if self._problem is not None:
            return error_block("PythonCode could not show the function", self._problem)
        if self._code is None:
            return error_block("PythonCode has no code", "Give PythonCode(code_func=...) or PythonCode(code_string=...).")
        code = textwrap.dedent(self._code).strip("\n")
        return f'<div class="flow-code"><pre><code class="language-python">{highlight_python(code)}</code></pre></div>'


class _DataViewer(MetaflowCardComponent):
    """What `JSONViewer` and `YAMLViewer` share: a titled, optionally collapsible text block."""

    REALTIME_UPDATABLE = True
    _default_title = ""
    _language = ""

    def __init__(self, data: Any, collapsible: bool = True, max_height: Optional[str] = None,
                 show_copy_button: bool = True, title: Optional[str] = None):
        self._data = data
        self._collapsible = collapsible
        self._max_height = max_height
        self._show_copy_button = show_copy_button
        self._title = title

    def update(self, data: Any) -> None:
        self._data = data

    def _text(self) -> str:
        raise NotImplementedError

    def render(self) -> str:
        title = escape(self._title or self._default_title)
        style, note = "", ""
        if self._max_height:
            if CSS_LENGTH.match(str(self._max_height)):
                style = f' style="max-height: {self._max_height}; overflow: auto"'
            else:
                note = (f'<div class="flow-note">max_height {escape(repr(self._max_height))} is not a CSS length '
                        "such as '300px' or '20rem', so the viewer is not limited.</div>")
        copy = ('<button type="button" class="flow-copy" onclick="event.preventDefault(); navigator.clipboard &amp;&amp; '
                "navigator.clipboard.writeText(this.closest('.flow-data-viewer').querySelector('pre').textContent)"
                '">Copy</button>') if self._show_copy_button else ""
        body = f'<pre{style}><code class="language-{self._language}">{escape(self._text())}</code></pre>{note}'
        if self._collapsible:
            return (f'<div class="flow-data-viewer flow-{self._language}-viewer"><details open><summary>{title}'
                    f"{copy}</summary>{body}</details></div>")
        return (f'<div class="flow-data-viewer flow-{self._language}-viewer"><div class="flow-viewer-title">'
                f"{title}{copy}</div>{body}</div>")


class JSONViewer(_DataViewer):
    """Data shown as indented JSON; a string that is JSON is re-indented, other strings are shown
    as a JSON string, and values JSON cannot hold are shown by ``str``."""

    _default_title = "JSON"
    _language = "json"

    def _text(self) -> str:
        data = _json_text_read(self._data)
        try:
            return json.dumps(data, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError) as exc:  # e.g. a circular reference
            return json.dumps({"error": f"Could not serialize data: {exc}"}, indent=2)


class YAMLViewer(_DataViewer):
    """Data shown as block-style YAML; a string that is JSON is converted, other strings are
    shown as they are."""

    _default_title = "YAML"
    _language = "yaml"

    def _text(self) -> str:
        data = _json_text_read(self._data)
        if isinstance(self._data, str) and data is self._data:
            return data  # not JSON: shown as it is
        return to_yaml(data).rstrip("\n") + "\n"


def _json_text_read(data: Any) -> Any:
    """A string holding JSON as the value it holds; anything else (other strings too) as it is."""
    if not isinstance(data, str):
        return data
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return data


_PLAIN_YAML = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .\-/]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else json.dumps(str(value))
    text = value if isinstance(value, str) else str(value)
    if _PLAIN_YAML.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(" "):
        return text
    return json.dumps(text, ensure_ascii=False)


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` as block-style YAML that a YAML parser reads back to the same data (keys and
    values it does not know are written as their ``str``)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return f"{pad}{{}}\n"
        lines = []
        for key, item in value.items():
            name = _yaml_scalar(key if isinstance(key, str) else str(key))
            if isinstance(item, (dict, list, tuple)) and item:
                lines.append(f"{pad}{name}:\n{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{name}: {to_yaml(item).strip()}\n")
        return "".join(lines)
    if isinstance(value, (list, tuple)):
        if not value:
            return f"{pad}[]\n"
        lines = []
        for item in value:
            if isinstance(item, (dict, list, tuple)) and item:
                nested = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {nested[indent + 2:]}")
            else:
                lines.append(f"{pad}- {to_yaml(item).strip()}\n")
        return "".join(lines)
    return f"{pad}{_yaml_scalar(value)}\n"
