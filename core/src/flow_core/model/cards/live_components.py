"""Components made to be updated while a task runs: `ValueBox` (one metric, prominently) and
`EventsTimeline` (a log of structured events, latest first), with Metaflow's arguments and its
validation: a bad argument raises in the step's code, where it was written."""

from __future__ import annotations

import re
import time
from typing import Any, Optional, Union

from flow_core.model.cards.code_viewers import JSONViewer, PythonCode, YAMLViewer
from flow_core.model.cards.components import Artifact, Image, Markdown, MetaflowCardComponent, render_component
from flow_core.model.cards.markup import escape, short_repr

#: Metaflow's rule for a theme that is not one of the built-in ones: a CSS class name.
CSS_CLASS = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")


def _text_argument(name: str, value: Optional[str], limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{name} must be {limit} characters or less, got {len(value)} characters")
    if not value.strip():
        raise ValueError(f"{name} cannot be empty or whitespace only")


def _theme_argument(name: str, theme: Optional[str], known: set[str]) -> None:
    if theme is None:
        return
    if not isinstance(theme, str):
        raise TypeError(f"{name} must be a string, got {type(theme).__name__}")
    if theme not in known and not CSS_CLASS.match(theme):
        raise ValueError(f"{name} must be one of {', '.join(sorted(known))} or a CSS class name, got '{theme}'")


class ValueBox(MetaflowCardComponent):
    """A key number with its title, subtitle and a change indicator ("Up 15% from last
    month"), coloured by ``theme`` (default, success, warning, danger,
    bg-gradient-indigo-purple, or your own CSS class)."""

    REALTIME_UPDATABLE = True
    VALID_THEMES = {"default", "success", "warning", "danger", "bg-gradient-indigo-purple"}

    def __init__(self, title: Optional[str] = None, value: Union[str, int, float] = "",
                 subtitle: Optional[str] = None, theme: Optional[str] = None,
                 change_indicator: Optional[str] = None):
        if value is None:
            raise ValueError("Value is required and cannot be None")
        self._check(title, value, subtitle, theme, change_indicator)
        self._title = title
        self._value = value
        self._subtitle = subtitle
        self._theme = theme
        self._change_indicator = change_indicator

    def _check(self, title: Optional[str], value: Any, subtitle: Optional[str], theme: Optional[str],
               change_indicator: Optional[str]) -> None:
        _text_argument("Title", title, 200)
        _text_argument("Subtitle", subtitle, 300)
        _text_argument("Change indicator", change_indicator, 200)
        _theme_argument("Theme", theme, self.VALID_THEMES)
        if value is None:
            return
        if not isinstance(value, (str, int, float)):
            raise TypeError(f"Value must be str, int, or float, got {type(value).__name__}")
        if isinstance(value, str):
            if len(value) > 100:
                raise ValueError(f"String value must be 100 characters or less, got {len(value)} characters")
            if not value.strip():
                raise ValueError("String value cannot be empty or whitespace only")
        elif not -1e15 <= value <= 1e15:
            raise ValueError(f"Numeric value must be between -1e15 and 1e15, got {value}")

    def update(self, title: Optional[str] = None, value: Optional[Union[str, int, float]] = None,
               subtitle: Optional[str] = None, theme: Optional[str] = None,
               change_indicator: Optional[str] = None) -> None:
        """Change what is given; what is not given stays."""
        self._check(title, value, subtitle, theme, change_indicator)
        for name, given in (("_title", title), ("_value", value), ("_subtitle", subtitle), ("_theme", theme),
                            ("_change_indicator", change_indicator)):
            if given is not None:
                setattr(self, name, given)

    def render(self) -> str:
        value = str(self._value)
        parts = [f'<div class="flow-value-box-title">{escape(self._title)}</div>' if self._title else "",
                 f'<div class="flow-value-box-value">{escape(value)}</div>',
                 f'<div class="flow-value-box-subtitle">{escape(self._subtitle)}</div>' if self._subtitle else "",
                 (f'<div class="flow-value-box-change">{escape(self._change_indicator)}</div>'
                  if self._change_indicator else "")]
        return f'<div class="flow-value-box flow-theme-{escape(self._theme or "default")}">{"".join(parts)}</div>'


#: What an event's payload may be, as Metaflow allows (VegaChart is not).
PAYLOAD_TYPES = (ValueBox, Image, Markdown, Artifact, PythonCode, JSONViewer, YAMLViewer)


class EventsTimeline(MetaflowCardComponent):
    """Structured events, latest first: ``update(event_data, style_theme=, priority=,
    payloads=, finished=)`` adds one. Only the newest ``max_events`` are kept; the count of all
    of them, and the rate, are shown above."""

    REALTIME_UPDATABLE = True
    VALID_THEMES = {"default", "success", "warning", "error", "info", "primary", "secondary", "tool_call",
                    "ai_response"}

    def __init__(self, title: Optional[str] = None, max_events: int = 100):
        self._title = title
        self._max_events = max_events
        self._events: list[dict[str, Any]] = []
        self._total_events_count = 0
        self._first_event_time: Optional[float] = None
        self._last_update_time: Optional[float] = None
        self._finished = False

    def update(self, event_data: dict, style_theme: Optional[str] = None, priority: Optional[str] = None,
               payloads: Optional[dict] = None, finished: Optional[bool] = None) -> None:
        _theme_argument("style_theme", style_theme, self.VALID_THEMES)
        for key, payload in (payloads or {}).items():
            if not isinstance(payload, PAYLOAD_TYPES):
                raise TypeError(f"Payload '{key}' must be one of: ValueBox, Image, Markdown, Artifact, PythonCode, "
                                f"JSONViewer, YAMLViewer. Got {type(payload).__name__}")
        now = time.time()
        metadata = dict(event_data)
        metadata.setdefault("timestamp", now)
        self._events.insert(0, {"metadata": metadata, "payloads": dict(payloads or {}), "style_theme": style_theme,
                                "priority": priority, "event_id": f"event_{self._total_events_count}"})
        del self._events[max(self._max_events, 0):]
        self._total_events_count += 1
        self._last_update_time = now
        if self._first_event_time is None:
            self._first_event_time = now
        if finished is not None:
            self._finished = finished

    def get_stats(self) -> dict:
        """How many events came, how many are shown, when, and how fast."""
        stats: dict[str, Any] = {"total_events": self._total_events_count, "displayed_events": len(self._events),
                                 "last_update": self._last_update_time, "first_event": self._first_event_time,
                                 "finished": self._finished}
        if self._first_event_time and self._last_update_time and self._total_events_count > 1:
            runtime = self._last_update_time - self._first_event_time
            if runtime > 0:
                stats["events_per_minute"] = round(self._total_events_count / runtime * 60, 1)
                stats["total_runtime_seconds"] = round(runtime, 1)
        return stats

    def render(self) -> str:
        stats = self.get_stats()
        status = "Finished" if self._finished else "Running"
        shown = (f" · showing the latest {stats['displayed_events']}"
                 if stats["displayed_events"] < stats["total_events"] else "")
        rate = f" · {stats['events_per_minute']} per minute" if "events_per_minute" in stats else ""
        title = f'<span class="flow-timeline-title">{escape(self._title)}</span>' if self._title else ""
        header = (f'<div class="flow-timeline-header">{title}<span class="flow-timeline-status" '
                  f'data-status="{status.lower()}">{status}</span><span class="flow-timeline-stats">'
                  f"{stats['total_events']} events{shown}{rate}</span></div>")
        events = "".join(self._render_event(event) for event in self._events)
        empty = '<div class="flow-note">No events yet.</div>' if not self._events else ""
        return f'<div class="flow-timeline">{header}{empty}<ol class="flow-events">{events}</ol></div>'

    @staticmethod
    def _render_event(event: dict[str, Any]) -> str:
        metadata = dict(event["metadata"])
        stamp = metadata.pop("timestamp")
        if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
        fields = "".join(f"<dt>{escape(key)}</dt><dd>{escape(value if isinstance(value, str) else short_repr(value))}</dd>"
                         for key, value in metadata.items())
        payloads = "".join(f"<details><summary>{escape(key)}</summary>{render_component(payload)}</details>"
                           for key, payload in event["payloads"].items())
        classes = ["flow-event", f"flow-theme-{event['style_theme'] or 'default'}"]
        if event["priority"]:
            classes.append(f"flow-priority-{re.sub(r'[^A-Za-z0-9_-]', '', str(event['priority']))}")
        return (f'<li class="{escape(" ".join(classes))}" data-event-id="{escape(event["event_id"])}">'
                f'<time class="flow-event-time">{escape(stamp)}</time><dl>{fields}</dl>{payloads}</li>')
