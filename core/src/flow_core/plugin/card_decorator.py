"""``@card``: a report of the task, stored as one HTML file next to its artifacts.

As in Metaflow: a step may carry several (``@card(type="blank", id="plots")``), its code adds
components through ``current.card``, the card is rendered when the task succeeds, and a card
that fails to render (or takes longer than ``timeout``) never fails the task: what is stored
instead is a card that says why. ``current.card.refresh()`` stores the card as it is while
the task runs.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

from flow_core.errors import FlowError
from flow_core.model.cards.card_slot import CARD_NAME, CardSlot
from flow_core.model.cards.card_types import TaskFacts, ValueFacts, render_card, render_error_card
from flow_core.model.cards.collector import CardComponentCollector, CardManager, card_warning
from flow_core.model.cards.markup import exception_text, full_type_name, short_repr
from flow_core.model.cards.page import FINAL, RUNNING
from flow_core.model.current import current
from flow_core.model.decorators import DecoratorError, StepDecorator

#: Artifacts larger than this (encoded bytes) are listed on the default card without loading them.
MAX_LOADED_ARTIFACT = 1024 * 1024


class CardTimeout(FlowError):
    """A card took longer to render than its @card(timeout=...)."""


def _within(seconds: float, render: Callable[[], str]) -> str:
    """``render()``, stopped after ``seconds`` where the process timer can do it (the task's
    main thread); elsewhere unbounded."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return render()

    def on_alarm(signum: int, frame: Any) -> None:
        raise CardTimeout(f"rendering the card took longer than its timeout of {seconds:g} seconds")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return render()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class card(StepDecorator):
    """Attach a card to the step's tasks: ``type`` ``default`` (parameters, artifacts, the
    graph) or ``blank``; ``id`` to reach it as ``current.card[id]``; ``options`` for the type
    (``blank``: ``title``); ``timeout`` seconds for rendering it."""

    name = "card"
    defaults = {"type": "default", "id": None, "options": {}, "scope": "task", "rank": None, "timeout": 45,
                "save_errors": True, "customize": False, "refresh_interval": 5}
    allow_multiple = True

    def step_init(self, flow_cls, graph, step_name):
        if not isinstance(self.attributes["options"], dict):
            raise DecoratorError(f"@card on step {step_name}: options must be a dict, not {self.attributes['options']!r}")
        for key in ("timeout", "refresh_interval"):
            value = self.attributes[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise DecoratorError(f"@card on step {step_name}: {key} must be a number of seconds, not {value!r}")
            try:
                float(value)
            except ValueError:
                raise DecoratorError(f"@card on step {step_name}: {key} must be a number of seconds, "
                                     f"not {value!r}") from None

    # -- in the task ----------------------------------------------------------------------------

    def task_pre_step(self, ctx):
        collector = current.card
        if not isinstance(collector, CardComponentCollector):
            collector = CardComponentCollector()
            current._set(card=collector)
        card_id = self.attributes["id"]
        if card_id is not None and not CARD_NAME.match(str(card_id)):
            card_warning(f"@card id '{card_id}' is not made of letters, digits and underscores, so the card has no "
                         f"id and current.card['{card_id}'] does not reach it")
            card_id = None
        self._ctx = ctx
        self._slot = CardSlot(len(collector.cards), str(self.attributes["type"]), card_id)
        self._manager = CardManager(self._slot, self._store_running, float(self.attributes["refresh_interval"]),
                                    customize=str(self.attributes["customize"]) == "True")
        collector._add_card(self._manager)

    def task_finished(self, ctx, succeeded):
        if not succeeded or getattr(self, "_manager", None) is None:
            return  # Metaflow's rule: a failed task gets no card
        slot = self._slot
        try:  # gathering the artifacts' reprs counts against the timeout too
            html = _within(float(self.attributes["timeout"]), lambda: self._render(self._facts(final=True), FINAL))
        except Exception as exc:
            why = str(exc) if isinstance(exc, FlowError) else exception_text(exc)
            card_warning(f"the {slot.type} card of step '{ctx.step_name}' failed to render: "
                         f"{why.strip().splitlines()[-1]}")
            if str(self.attributes["save_errors"]) != "True":
                return
            html = render_error_card(slot.type, TaskFacts(ctx.pathspec, ctx.retry_count), why, slot.id)
        self._write(html)

    def _store_running(self, slot: CardSlot) -> None:
        """``refresh()``: the card as it is now, never failing the step that asked."""
        try:
            html = self._render(self._facts(final=False), RUNNING)
        except Exception as exc:
            card_warning(f"refreshing the {slot.type} card failed: {type(exc).__name__}: {exc}")
            return
        self._write(html)

    def _render(self, facts: TaskFacts, status: str) -> str:
        return render_card(self._slot.type, self.attributes["options"], list(self._manager.components), facts,
                           card_id=self._slot.id, status=status)

    def _write(self, html: str) -> None:
        writer = self._ctx.card_writer
        if writer is None:
            return
        try:
            writer.write(self._slot, html)
        except Exception as exc:
            card_warning(f"the {self._slot.type} card could not be stored: {type(exc).__name__}: {exc}")

    def _facts(self, final: bool) -> TaskFacts:
        ctx = self._ctx
        flow = ctx.flow
        parameters = []
        for name in current.parameter_names:
            try:
                value = getattr(flow, name)
                parameters.append(ValueFacts(name, full_type_name(value), short_repr(value)))
            except Exception as exc:
                parameters.append(ValueFacts(name, "?", f"(not readable: {type(exc).__name__})"))
        artifacts = None
        if final and ctx.stored_artifacts is not None:
            artifacts = []
            for name, (kind, size) in sorted(ctx.stored_artifacts.items()):
                if name.startswith("_") or name in current.parameter_names:
                    continue
                if size > MAX_LOADED_ARTIFACT:
                    artifacts.append(ValueFacts(name, kind.removeprefix("builtins."), f"({size} bytes, not shown)"))
                    continue
                try:
                    artifacts.append(ValueFacts(name, kind.removeprefix("builtins."), short_repr(getattr(flow, name))))
                except Exception as exc:
                    artifacts.append(ValueFacts(name, kind, f"(not readable: {type(exc).__name__})"))
        return TaskFacts(pathspec=ctx.pathspec, attempt=ctx.retry_count, parameters=parameters,
                         artifacts=artifacts, graph=ctx.graph, user=current.username)
