"""``@card``: a report of the task, stored as one HTML file next to its artifacts.

As in Metaflow: a step may carry several (``@card(type="blank", id="plots")``), its code adds
components through ``current.card``, the card is rendered when the task succeeds, and a card
that fails to render (or takes longer than ``timeout``) never fails the task: what is stored
instead is a card that says why. ``current.card.refresh(data)`` stores the card as it is while
the task runs. The card's type (`MetaflowCard`) comes from the plugin registry: Flow's
``default`` and ``blank``, or a plugin's through the ``flow_card_types`` hook.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

from flow_core.errors import FlowError
from flow_core.model.cards.card_slot import CARD_NAME, CardSlot
from flow_core.model.cards.card_class import CardTask, MetaflowCard, build_card, graph_dict
from flow_core.model.cards.card_types import UnknownCardType, render_error_card
from flow_core.model.cards.collector import CardComponentCollector, CardManager, card_warning
from flow_core.model.cards.components import render_component
from flow_core.model.cards.markup import exception_text, full_type_name, short_repr
from flow_core.model.cards.task_facts import TaskFacts, ValueFacts
from flow_core.model.current import current
from flow_core.model.decorators import DecoratorError, StepDecorator

#: Artifacts larger than this (encoded bytes) are listed on the default card without loading them.
MAX_LOADED_ARTIFACT = 1024 * 1024


class CardTimeout(FlowError):
    """A card took longer to render than its @card(timeout=...)."""


class CardRenderError(FlowError):
    """A card type's render returned something other than a page of HTML."""


def card_class(type_name: str) -> type[MetaflowCard]:
    """The installed card type of that name (Flow's own or a plugin's)."""
    from flow_core.plugin.registry import get_registry  # the registry loads the built-ins, which load this module

    types = get_registry().card_types
    found = types.get(type_name)
    if found is None:
        raise UnknownCardType(f"there is no card type '{type_name}'; the installed card types are "
                              f"{', '.join(types)} (a plugin adds more through the flow_card_types hook)")
    return found


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
    graph), ``blank`` or one a plugin installs; ``id`` to reach it as ``current.card[id]``;
    ``options`` for the type (``blank``: ``title``); ``timeout`` seconds for rendering it;
    ``refresh_interval`` seconds between live cards while the task runs."""

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
        try:
            self._class: type[MetaflowCard] | None = card_class(self._slot.type)
        except FlowError as exc:  # said in the card that stands in for it, once the task is over
            self._class, self._class_problem = None, str(exc)
        self._runtime_warned = False
        self._manager = CardManager(self._slot, self._store_running, float(self.attributes["refresh_interval"]),
                                    customize=str(self.attributes["customize"]) == "True",
                                    editable=bool(self._class is not None and self._class.ALLOW_USER_COMPONENTS))
        collector._add_card(self._manager)

    def task_finished(self, ctx, succeeded):
        if getattr(self, "_manager", None) is None:
            return
        self._manager.close()
        if not succeeded:
            return  # Metaflow's rule: a failed task gets no card
        slot = self._slot
        try:  # gathering the artifacts' reprs counts against the timeout too
            html = _within(float(self.attributes["timeout"]), lambda: self._render(final=True))
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
        if self._class is None or not self._class.RUNTIME_UPDATABLE:
            return  # as Metaflow: only a runtime-updatable type has a live card
        try:
            html = self._render(final=False)
        except NotImplementedError:
            if not self._runtime_warned:
                self._runtime_warned = True
                card_warning(f"the {slot.type} card is RUNTIME_UPDATABLE but its type does not implement "
                             "render_runtime(task, data), so it is not shown while the task runs")
            return
        except Exception as exc:
            card_warning(f"refreshing the {slot.type} card failed: {type(exc).__name__}: {exc}")
            return
        self._write(html)

    def _render(self, final: bool) -> str:
        """The card's page from its type: ``render`` once the task is over, ``render_runtime``
        while it runs; the type sees the latest ``refresh(data)`` either way."""
        if self._class is None:
            raise UnknownCardType(self._class_problem)
        slot = self._slot
        facts = self._facts(final)
        card = build_card(self._class, options=dict(self.attributes["options"]),
                          components=[render_component(c) for c in self._manager.components],
                          graph=graph_dict(self._ctx.graph), flow=self._ctx.flow)
        task = CardTask(facts, self._ctx.flow, finished=final,
                        card={"type": slot.type, "id": slot.id, "pathspec": facts.pathspec, "attempt": facts.attempt})
        data = self._manager.latest_data(final, "render" if final else "render_runtime")
        if final:
            try:
                card.runtime_data = data  # as Metaflow gives the final render the last refresh's data
            except AttributeError:
                pass
            html = card.render(task)
        else:
            html = card.render_runtime(task, data)
        if not isinstance(html, str) or not html.strip():
            method = "render" if final else "render_runtime"
            raise CardRenderError(f"the {slot.type} card's {method} returned {html!r}, not a page of HTML")
        return html.replace(MetaflowCard.RELOAD_POLICY_TOKEN, self._reload_token(card, task, data))

    @staticmethod
    def _reload_token(card: MetaflowCard, task: CardTask, data: dict) -> str:
        if data["render_seq"] == "final":
            return "final"
        if card.RELOAD_POLICY == MetaflowCard.RELOAD_POLICY_ALWAYS:
            return f"render-seq-{data['render_seq']}"
        if card.RELOAD_POLICY == MetaflowCard.RELOAD_POLICY_ONCHANGE:
            return str(card.reload_content_token(task, data))
        return "never"

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
