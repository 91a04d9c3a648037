"""The supervisor against a reference model of OTP's restart rules, on random trees and endings.

Each example builds one supervisor (strategy, intensity, children of random
restart types, named or not, some of them supervisors of a leaf of their
own) and ends random children (exit, kill, crash), makes some fail their
next starts, and pauses at random between. After every step the live tree
must match the model: which children are listed and running, which were
started and stopped in what order, which kept their handle, that each name
reaches the running instance, and whether the supervisor itself is alive.
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
    label: str  # what its main logs (a nested supervisor: what its leaf logs)
    id: str  # what `children` lists: its name, else its label
    restart: str
    nested: bool  # a supervisor of one leaf: only killed, and its stop is its leaf's
    running: bool = True
    restarted: bool = False
    failing: int = 0  # how many of its next starts fail


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
        elif child.restart != "transient" or reason != "exit":
            self.restart(child, now)

    def restart(self, child: ModelChild, now: float) -> None:
        """Restart what the strategy says; a start that fails is one more restart, of that child."""
        while True:
            self.restarts = [t for t in self.restarts if t > now - PERIOD] + [now]
            if len(self.restarts) > self.intensity:
                for other in reversed(self.children):
                    self.stop(other)
                self.alive = False
                return
            if child.restart == "temporary":  # it failed to start: never tried again
                self.children.remove(child)
                return
            at = self.children.index(child)
            targets = {
                "one_for_one": [child], "one_for_all": list(self.children), "rest_for_one": self.children[at:],
            }[self.strategy]
            for other in reversed(targets):
                if other is not child:
                    self.stop(other)
            failed = None
            for other in targets:
                if other is not child and other.restart == "temporary":
                    self.children.remove(other)
                elif not other.running and failed is None:
                    if other.failing:
                        other.failing -= 1
                        self.events.append(("fail", other.label))
                        failed = other
                    else:
                        self.events.append(("start", other.label))
                        other.running = other.restarted = True
            if failed is None:
                return
            child = failed

    def stop(self, child: ModelChild) -> None:
        if child.running:
            self.events.append(("stop", child.label))
            child.running = False


def child_main(log: list[tuple[str, str]], failing: dict[str, int], label: str):
    async def main():
        if failing.get(label):
            failing[label] -= 1
            log.append(("fail", label))
            raise RuntimeError(f"{label} cannot start")
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
    # (label, restart type, named, nested): a nested supervisor is always named, as ids must differ.
    children = []
    for i in range(n):
        nested = draw(st.integers(0, 4)) == 0
        children.append((f"c{i}", draw(st.sampled_from(["permanent", "transient", "temporary"])),
                         nested or draw(st.booleans()), nested))
    strategy = draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]))
    intensity = draw(st.integers(0, 4))
    step = st.one_of(
        st.tuples(st.just("end"), st.integers(0, 9), st.sampled_from(["exit", "killed", "crash"])),
        st.tuples(st.just("fail"), st.integers(0, 9), st.integers(1, 2)),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 3.0, 6.0]), st.just(0)),
    )
    return children, strategy, intensity, draw(st.lists(step, max_size=10))


def spec(log, failing, label, restart, named, nested):
    name = f".{label}" if named else None
    if nested:
        leaf = supervisor.child(child_main(log, failing, label), name=f".{label}.leaf", crash_policy="exit")
        return attrs.evolve(supervisor.nested([leaf], intensity=0, name=name), restart=supervisor.Restart(restart))
    return supervisor.child(child_main(log, failing, label), name=name, restart=restart, crash_policy="exit")


async def run_case(children, strategy, intensity, steps) -> None:
    log: list[tuple[str, str]] = []
    failing: dict[str, int] = {}
    specs = [spec(log, failing, *child) for child in children]
    model = Model(strategy, intensity, [
        ModelChild(label, f".{label}" if named else label, restart, nested)
        for label, restart, named, nested in children
    ])
    async with skypy.open_node() as node:
        sup = await supervisor.start(specs, strategy=strategy, intensity=intensity, period=PERIOD)
        model.events = list(log)
        live = {c.id: c.handle for c in await supervisor.children(sup)}
        for kind, index, how in steps:
            if kind == "wait":
                await skypy.sleep(index)
                continue
            if kind == "fail":
                if model.children:
                    target = model.children[index % len(model.children)]
                    target.failing = failing[target.label] = how
                continue
            running = [c for c in model.children if c.running]
            if not model.alive or not running:
                continue
            victim = running[index % len(running)]
            if victim.nested:
                how = "killed"  # a supervisor takes no commands to exit or crash
            for c in model.children:
                c.restarted = False
            model.end(victim, how, trio.current_time())
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
