"""send, call, ret, response and every way a call fails: a call raises CallError, never hangs."""

import pytest
import trio

import skypy
from tests.helpers.services import echo, echo_service


def forgot(logs, addr):
    return [t for s, t in logs if s == addr and t.startswith("Maybe forgot response session")]


async def test_call_returns_none_one_value_or_a_tuple(node):
    addr = await skypy.newservice(echo_service)
    assert await skypy.call(addr, "lua") is None
    assert await skypy.call(addr, "lua", 7) == 7
    assert await skypy.call(addr, "lua", 1, "a", True) == (1, "a", True)


async def test_async_handler_answers_after_suspending(node):
    async def service():
        async def handler(session, source, x):
            await skypy.sleep(0)
            skypy.ret(x + 1)

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua", 41) == 42


async def test_handler_gets_session_and_source(node):
    async def service():
        skypy.dispatch("lua", lambda session, source: skypy.ret(session, source))

    addr = await skypy.newservice(service)
    session, source = await skypy.call(addr, "lua")
    assert session > 0 and source == skypy.self()


async def test_sends_from_one_sender_arrive_in_order(node):
    received = []

    async def service():
        skypy.dispatch("lua", lambda session, source, n: received.append(n))
        skypy.dispatch("text", echo)

    addr = await skypy.newservice(service)
    for n in range(1000):
        skypy.send(addr, "lua", n)
    await skypy.call(addr, "text")  # queued behind the sends
    assert received == list(range(1000))


async def test_send_to_dead_address_is_dropped_and_logged(node, logs):
    skypy.send(0x00FFFFFF, "lua", "hello")
    skypy.send(".nobody", "lua", "hello")
    assert any("dead address :00ffffff" in text for _, text in logs)
    assert any(".nobody" in text for _, text in logs)


async def test_call_to_unknown_address_fails_at_once_naming_it(node):
    with pytest.raises(skypy.CallError, match="invalid address :00ffffff"):
        await skypy.call(0x00FFFFFF, "lua", "get")


async def test_call_to_unknown_name_fails_naming_it(node):
    with pytest.raises(skypy.CallError, match=r"\.nobody"):
        await skypy.call(".nobody", "lua", "get")


async def test_call_fails_when_handler_raises_and_callee_keeps_running(node, logs):
    async def service():
        def handler(session, source, cmd):
            if cmd == "boom":
                raise ValueError("boom requested")
            skypy.ret("fine")

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    with pytest.raises(skypy.CallError, match=rf"{skypy.address(addr)}.*boom requested"):
        await skypy.call(addr, "lua", "boom")
    assert await skypy.call(addr, "lua", "ok") == "fine"
    crash = node.crashes.pop()
    assert (crash.service, crash.what, type(crash.exception)) == (skypy.address(addr), "handler", ValueError)
    logged = [text for source, text in logs if source == addr and "raised" in text]
    assert "Traceback" in logged[0] and "ValueError: boom requested" in logged[0]


async def test_call_fails_and_logs_when_handler_forgets_to_answer(node, logs):
    sessions = []

    async def service():
        skypy.dispatch("lua", lambda session, source: sessions.append(session))

    addr = await skypy.newservice(service)
    with pytest.raises(skypy.CallError, match=skypy.address(addr)):
        await skypy.call(addr, "lua")
    assert forgot(logs, addr) == [
        f"Maybe forgot response session {sessions[0]} from {skypy.address(skypy.self())}"
    ]


async def test_async_handler_that_forgets_to_answer_fails_the_call(node, logs):
    async def service():
        async def handler(session, source):
            await skypy.sleep(0)

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua")
    assert len(forgot(logs, addr)) == 1


async def test_ignoreret_lets_another_service_answer_a_redirected_request(node, logs):
    real = await skypy.newservice(echo_service)

    async def proxy():
        def forward(session, source, *args):
            skypy.redirect(real, source, "lua", session, *args)
            skypy.ignoreret()

        skypy.dispatch("lua", forward)

    addr = await skypy.newservice(proxy)
    assert await skypy.call(addr, "lua", "via proxy") == "via proxy"
    assert forgot(logs, addr) == []


async def test_ret_twice_raises_no_session(node):
    outcomes = []

    async def service():
        def handler(session, source):
            skypy.ret(1)
            try:
                skypy.ret(2)
            except skypy.ResponseError as exc:
                outcomes.append(str(exc))

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua") == 1
    assert outcomes and outcomes[0].startswith("No session")


async def test_ret_on_a_plain_send_returns_false(node):
    results = []

    async def service():
        skypy.dispatch("lua", lambda session, source: results.append(skypy.ret("ignored")))
        skypy.dispatch("text", echo)

    addr = await skypy.newservice(service)
    skypy.send(addr, "lua")
    await skypy.call(addr, "text")
    assert results == [False]


async def test_response_answers_later_from_another_coroutine(node):
    async def service():
        pending = []

        def hold(session, source):
            pending.append(skypy.response())

        def release(session, source, value):
            pending.pop()(value)
            skypy.ret()

        skypy.dispatch_commands({"hold": lambda: hold(0, 0), "release": lambda v: release(0, 0, v)})

    addr = await skypy.newservice(service)
    async with trio.open_nursery() as nursery:
        result = []

        async def held_call():
            result.append(await node.call(addr, "lua", "hold"))

        nursery.start_soon(held_call)
        await trio.testing.wait_all_tasks_blocked()
        await node.call(addr, "lua", "release", "later")
    assert result == ["later"]


async def test_held_responses_each_answer_their_own_call(node):
    # Plain handlers share one request object while they run; each held
    # response must keep its own caller.
    async def service():
        pending = []
        skypy.dispatch_commands({
            "hold": lambda: pending.append(skypy.response()),
            "release": lambda: [reply(n) for n, reply in reversed(list(enumerate(pending)))] and None,
        })

    addr = await skypy.newservice(service)
    results = {}

    async def held_call(n):
        results[n] = await node.call(addr, "lua", "hold")

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(held_call, n)
            await trio.testing.wait_all_tasks_blocked()
        await node.call(addr, "lua", "release")
    assert results == {0: 0, 1: 1, 2: 2}


async def test_a_call_answered_before_its_handler_goes_on_as_a_coroutine_is_answered_once(node, logs):
    async def service():
        async def later():
            await skypy.sleep(3600)

        def handler(session, source):
            skypy.ret("early")
            return later()

        skypy.dispatch("lua", handler)
        skypy.dispatch("text", lambda session, source: skypy.exit())

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua") == "early"
    with pytest.raises(skypy.CallError, match="exited"):
        await skypy.call(addr, "text")  # exits: what it owes is failed, and "early"'s call is not
    await skypy.call(await skypy.newservice(lambda: None), "debug", "PING")  # the caller's mailbox is drained
    assert not [text for _, text in logs if "Unknown session" in text]


async def test_response_used_twice_raises(node):
    errors = []

    async def service():
        def handler(session, source):
            reply = skypy.response()
            reply("once")
            try:
                reply("twice")
            except skypy.ResponseError as exc:
                errors.append(str(exc))

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua") == "once"
    assert errors == ["Can't response more than once"]


async def test_response_fail_raises_call_error_with_reason(node):
    async def service():
        skypy.dispatch("lua", lambda session, source: skypy.response().fail("not today"))

    addr = await skypy.newservice(service)
    with pytest.raises(skypy.CallError, match="not today"):
        await skypy.call(addr, "lua")


async def test_dispatch_commands_answers_with_return_value(node):
    async def service():
        async def slow_add(a, b):
            await skypy.sleep(0)
            return a + b

        skypy.dispatch_commands({"add": lambda a, b: a + b, "slow_add": slow_add, "nothing": lambda: None})

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua", "add", 1, 2) == 3
    assert await skypy.call(addr, "lua", "slow_add", 3, 4) == 7
    assert await skypy.call(addr, "lua", "nothing") is None


async def test_unknown_command_fails_the_call_naming_it(node):
    async def service():
        skypy.dispatch_commands({"get": lambda: 1})

    addr = await skypy.newservice(service)
    with pytest.raises(skypy.CallError, match="no command 'put'"):
        await skypy.call(addr, "lua", "put")
    assert "no command 'put'" in str(node.crashes.pop().exception)


async def test_call_with_unhandled_protocol_fails(node, logs):
    addr = await skypy.newservice(echo_service)
    with pytest.raises(skypy.CallError, match="protocol text"):
        await skypy.call(addr, "text", "hi")
    assert any("Unknown request (text)" in t for s, t in logs if s == addr)


async def test_call_timeout_raises_too_slow_and_drops_the_late_reply(node, logs, autojump_clock):
    async def service():
        async def slow(session, source):
            await skypy.sleep(10)
            skypy.ret("late")

        skypy.dispatch("lua", slow)
        skypy.dispatch("text", echo)

    addr = await skypy.newservice(service)
    with pytest.raises(trio.TooSlowError):
        await skypy.call(addr, "lua", timeout=1)
    await skypy.sleep(20)
    assert await skypy.call(addr, "text", "still fine") == "still fine"
    assert not any("Unknown session" in t for _, t in logs)


async def test_unknown_session_is_logged(node, logs):
    skypy.redirect(skypy.self(), 0x00ABCDEF, "response", 999)
    await skypy.yield_()
    assert (skypy.self(), "Unknown session : 999 from :00abcdef") in logs


async def test_registered_protocol_packs_and_unpacks(node):
    got = []

    async def service():
        skypy.register_protocol("csv", 100, unpack=lambda data: tuple(data.split(",")))
        skypy.dispatch("csv", lambda session, source, *fields: got.append(fields))
        skypy.dispatch("text", echo)

    addr = await skypy.newservice(service)
    skypy.register_protocol("csv", 100, pack=lambda *fields: ",".join(fields))
    skypy.send(addr, "csv", "a", "b")
    await skypy.call(addr, "text")
    assert got == [("a", "b")]


async def test_register_protocol_refuses_a_taken_name_or_id(node):
    with pytest.raises(skypy.SkypyError):
        skypy.register_protocol("lua", 99)
    with pytest.raises(skypy.SkypyError):
        skypy.register_protocol("mine", 10)


async def received_after_the_sender_changed_it():
    """What a service receives of a list its sender changes after sending it (a sharing bug)."""
    got = []

    async def service():
        skypy.dispatch("lua", lambda session, source, items: got.append(items))
        skypy.dispatch("text", echo)

    addr = await skypy.newservice(service)
    items = ["a"]
    skypy.send(addr, "lua", items)
    items.append("changed")
    await skypy.call(addr, "text")
    return got.pop()


async def test_by_default_the_receiver_shares_the_senders_payload(node):
    assert await received_after_the_sender_changed_it() == ["a", "changed"]


@pytest.mark.skypy_config(copy_messages=True)
async def test_copy_messages_gives_the_receiver_its_own_payload(node):
    assert await received_after_the_sender_changed_it() == ["a"]
