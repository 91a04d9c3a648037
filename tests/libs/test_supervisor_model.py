"""The supervisor against a reference model of OTP's restart rules, on random trees and endings.

Each example builds one supervisor (strategy, intensity, children of random
restart types, named or not) and ends random children (exit, kill, crash)
with random pauses between. After every step the live tree must match the
model: which children are listed and running, which were started and
stopped in what order, which kept their handle, that each name reaches the
running instance, and whether the supervisor itself is still alive.
"""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st

import skypy
from skypy import supervisor

PERIOD = 5.0


@attrs.define
class ModelChild:
    label: str  # what its main logs
    id: str  # what `children` lists: its name, else its label
    restart: str
    running: bool = True
    restarted: bool = False


@attrs.define
class Model:
    """OTP's rules, written out plainly: what a supervisor does when a child ends."""

    strategy: str
    intensity: int
    children: list[ModelChild]
    events: list[tuple[str, str]] = attrs.Factory(list)
    restarts: list[float] = attrs.Factory(list)
    alive: bool = True

    def end(self, child: ModelChild, reason: str, now: float) -> None:
        child.running = False
        if child.restart == "temporary":
            self.children.remove(child)
            return
        if child.restart == "transient" and reason == "exit":
            return
        self.restarts = [t for t in self.restarts if t > now - PERIOD] + [now]
        if len(self.restarts) > self.intensity:
            for other in reversed(self.children):
                self._stop(other)
            self.alive = False
            return
        at = self.children.index(child)
        targets = {
            "one_for_one": [child], "one_for_all": list(self.children), "rest_for_one": self.children[at:],
        }[self.strategy]
        for other in reversed(targets):
            if other is not child:
                self._stop(other)
        for other in targets:
            if other is not child and other.restart == "temporary":
                self.children.remove(other)
            else:
                self.events.append(("start", other.label))
                other.running = other.restarted = True

    def _stop(self, child: ModelChild) -> None:
        if child.running:
            self.events.append(("stop", child.label))
            child.running = False


def child_main(log: list[tuple[str, str]], label: str):
    async def main():
        log.append(("start", label))

        async def stopping():
            log.append(("stop", label))

        skypy.on_stop(stopping)

        def act(session, source, how):
            if how == "exit":
                skypy.exit()
            raise RuntimeError(f"{label} crashes")

        skypy.dispatch("lua", act)

    main.__qualname__ = label
    return main


@st.composite
def cases(draw):
    n = draw(st.integers(1, 4))
    children = [
        (f"c{i}", draw(st.sampled_from(["permanent", "transient", "temporary"])), draw(st.booleans()))
        for i in range(n)
    ]
    strategy = draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]))
    intensity = draw(st.integers(0, 4))
    step = st.one_of(
        st.tuples(st.just("end"), st.integers(0, 9), st.sampled_from(["exit", "killed", "crash"])),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 3.0, 6.0]), st.just("")),
    )
    return children, strategy, intensity, draw(st.lists(step, max_size=10))


async def run_case(children, strategy, intensity, steps) -> None:
    log: list[tuple[str, str]] = []
    specs = [
        supervisor.child(child_main(log, label), name=f".{label}" if named else None, restart=restart, crash_policy="exit")
        for label, restart, named in children
    ]
    model = Model(
        strategy, intensity, [ModelChild(label, f".{label}" if named else label, restart) for label, restart, named in children]
    )
    async with skypy.open_node() as node:
        sup = await supervisor.start(specs, strategy=strategy, intensity=intensity, period=PERIOD)
        model.events = list(log)
        live = {c.id: c.handle for c in await supervisor.children(sup)}
        for kind, index, how in steps:
            if kind == "wait":
                await skypy.sleep(index)
                continue
            running = [c for c in model.children if c.running]
            if not model.alive or not running:
                continue
            victim = running[index % len(running)]
            for c in model.children:
                c.restarted = False
            model.end(victim, {"killed": "killed", "exit": "exit", "crash": "crash"}[how], trio.current_time())
            if how == "killed":
                await skypy.kill(live[victim.id])
            else:
                with pytest.raises(skypy.CallError):
                    await skypy.call(live[victim.id], "lua", how)
            try:
                listed = await supervisor.children(sup)
            except skypy.CallError:
                listed = None
            assert log == model.events
            assert (listed is not None) == model.alive == (sup in node.node.services)
            if listed is None:
                assert not [h for h in node.node.services if h > sup]  # every child was stopped
                break
            assert [(c.id, c.handle is not None) for c in listed] == [(c.id, c.running) for c in model.children]
            for c, m in zip(listed, model.children, strict=True):
                if m.running:
                    assert (c.handle == live.get(c.id)) == (not m.restarted), (c, m)
                    if m.id.startswith("."):
                        assert node.localname(m.id) == c.handle
            live = {c.id: c.handle for c in listed}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_live_supervision_tree_follows_otps_rules(case):
    children, strategy, intensity, steps = case
    trio.run(run_case, children, strategy, intensity, steps, clock=trio.testing.MockClock(autojump_threshold=0))
