"""The debug console's commands, apart from its socket: one command line in, lines of text out.

`services/debug_console.py` feeds it lines from TCP (or an HTTP GET) and
writes back what it returns. Answers are skynet's: a table is
``key<TAB>value`` lines sorted by key (a value that is itself a table reads
``k:v<TAB>k:v``), and each answer ends with ``<CMD OK>``, or with the error
and ``<CMD Error>``. Runs inside the console service, so every command acts
with that service's API.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, Awaitable, Callable

import trio

from .. import socket as skysocket, supervisor
from .._api import lifecycle, messages as api, tracing
from .._api.coroutines import fork, wait, wakeup
from .._api.reload import reload
from .._core.message import HARBOR_SHIFT, address
from .._core.node import Node
from .._core.service import Service
from ..errors import CallError, SkypyError
from . import msglog

__all__ = ["COMMANDS", "HELP", "READ_ONLY", "Answer", "format_answer", "run", "token"]

# How long stat and mem wait for one service before printing TIMEOUT for it.
TIMEOUT = 3.0
INVALID = "Invalid command, type help for command list"

HELP = {
    "help": "This help message",
    "list": "List all the service",
    "stat": "Dump all stats",
    "mem": "mem : show memory status",
    "gc": "gc : collect garbage (one heap for the node), then show mem",
    "info": "info address ... : get service information",
    "task": "task address : show service task detail",
    "exit": "exit address : ask a service to exit",
    "kill": "kill address : kill service",
    "start": "start name args... : launch a new service",
    "call": "call address args... : call with Python literals, show the answer",
    "ping": "ping address : seconds for a debug PING round trip",
    "inject": "inject address file.py : run the file in the service's module",
    "netstat": "netstat : show every socket",
    "signal": "signal address : interrupt its next handler that holds the node too long",
    "logon": "logon address : log its messages to <logpath>/<address>.log",
    "logoff": "logoff address",
    "getenv": "getenv key",
    "setenv": "setenv key value",
    "clearcache": "clear the compiled service code cache",
    "reload": "reload address : run the service's file again in place, its state carried over",
    "restart": "restart address : stop a supervised service and have its supervisor start it again",
    "trace": "trace [tag] : the recent hops of a trace (skypy.trace), or of every trace",
}

# The commands that change nothing: all that HTTP may run without the token,
# as any web page a local browser opens can send a request to the console.
READ_ONLY = frozenset({"list", "stat", "mem", "info", "task", "netstat", "ping", "help", "trace"})


def token() -> str | None:
    """The running node's ``[console] token``, or None if it has none."""
    console = api.running().node.config.console
    return None if console is None else console.get("token")

Table = dict[Any, Any]
Answer = str | Table | None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as skynet prints them
    return str(value)


def _order(key: Any) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int) else (1, str(key))


def format_answer(answer: Answer) -> list[str]:
    """The lines of an answer: a string as it is, a table as sorted ``key<TAB>value`` lines."""
    if answer is None:
        return []
    if not isinstance(answer, dict):
        return [_text(answer)]
    lines = []
    for key in sorted(answer, key=_order):
        value = answer[key]
        if isinstance(value, dict):
            value = "\t".join(f"{k}:{_text(v)}" for k, v in sorted(value.items(), key=lambda kv: _order(kv[0])))
        lines.append(f"{key}\t{_text(value)}")
    return lines


def _node() -> Node:
    return api.running().node


def _service(text: str | None) -> Service:
    """The live service an address argument names: ``.name``, ``:0000000a`` or ``a`` (hex)."""
    if not text:
        raise SkypyError("Need an address")
    node = _node()
    if text.startswith("."):
        handle = node.names.get(text)
        if handle is None:
            raise SkypyError(f"Not a valid name: no service is named {text} (list shows every service)")
    else:
        try:
            handle = int(text.removeprefix(":"), 16)
        except ValueError:
            raise SkypyError(f"Need an address, not {text!r}") from None
        if not text.startswith(":"):
            handle |= node.harbor << HARBOR_SHIFT
    return node.service(handle)


def _describe(svc: Service) -> str:
    return " ".join([svc.label, *map(str, svc.args)])


async def _ask_all(command: str) -> dict[Service, Any]:
    """Every service's answer to a debug `command`, asked all at once; TIMEOUT after 3 s.

    The console asks itself last, once the others' answers are in: asked
    with them, its own `mqlen` would count those answers, queued for it, as
    if it had a backlog.
    """
    me = api.running()
    services = [svc for svc in _node().services.values() if svc is not me]
    answers: dict[Service, Any] = {}
    done = object()

    async def ask(svc: Service) -> None:
        try:
            answers[svc] = await api.call(svc.handle, "debug", command, timeout=TIMEOUT)
        except trio.TooSlowError:
            answers[svc] = "TIMEOUT"
        except CallError as exc:
            answers[svc] = f"ERROR {exc}"
        if len(answers) == len(services):
            wakeup(done)

    for svc in services:
        fork(ask, svc)
    if services:
        await wait(done)  # forks start only once this coroutine suspends here
    answers[me] = await api.call(me.handle, "debug", command)
    return answers


async def cmd_help() -> Answer:
    return dict(HELP)


async def cmd_list() -> Answer:
    """Every service, in handle order; a supervisor's children indented under it."""
    services = _node().services
    tree = supervisor.tree()
    supervised = {child for children in tree.values() for child in children}
    lines: list[str] = []

    def add(handle: int, depth: int) -> None:
        svc = services.get(handle)
        if svc is not None:
            lines.append(f"{'  ' * depth}{address(handle)}\t{_describe(svc)}")
            for child in tree.get(handle, ()):
                add(child, depth + 1)

    for handle in sorted(services):
        if handle not in supervised:
            add(handle, 0)
    return "\n".join(lines)


async def cmd_stat() -> Answer:
    """Each service's debug STAT, and the node's count of messages sent to dead addresses."""
    stats: Table = {address(svc.handle): stat for svc, stat in (await _ask_all("STAT")).items()}
    stats["node"] = {"deadletters": _node().dead_letters.count}
    return stats


async def cmd_mem() -> Answer:
    def line(svc: Service, kb: Any) -> str:
        return f"{kb:.2f} Kb ({_describe(svc)})" if isinstance(kb, float) else f"{kb} ({_describe(svc)})"

    return {address(svc.handle): line(svc, kb) for svc, kb in (await _ask_all("MEM")).items()}


async def cmd_gc() -> Answer:
    # Python has one heap for the node: one collection serves every service.
    await api.call(api.self(), "debug", "GC")
    return await cmd_mem()


async def cmd_info(addr: str | None = None, *args: str) -> Answer:
    answer: Answer = await api.call(_service(addr).handle, "debug", "INFO", *args)
    return answer


async def cmd_task(addr: str | None = None) -> Answer:
    answer: Answer = await api.call(_service(addr).handle, "debug", "TASK")
    return answer


async def cmd_exit(addr: str | None = None) -> Answer:
    api.send(_service(addr).handle, "debug", "EXIT")
    return None


async def cmd_kill(addr: str | None = None) -> Answer:
    svc = _service(addr)
    await lifecycle.kill(svc.handle)
    return {address(svc.handle): _describe(svc)}


async def cmd_start(name: str | None = None, *args: str) -> Answer:
    if not name:
        raise SkypyError("start needs a service name")
    handle = await lifecycle.newservice(name, *args)
    return {address(handle): " ".join([name, *args])}


async def cmd_call(addr: str | None = None, arguments: str = "") -> Answer:
    handle = _service(addr).handle
    try:
        args = ast.literal_eval(f"({arguments},)") if arguments.strip() else ()
    except (SyntaxError, ValueError) as exc:
        raise SkypyError(f"Invalid arguments (Python literals separated by commas): {exc}") from None
    return repr(await api.call(handle, "lua", *args))


async def cmd_ping(addr: str | None = None) -> Answer:
    handle = _service(addr).handle
    started = trio.current_time()
    await api.call(handle, "debug", "PING")
    return f"{trio.current_time() - started:.6f}"


async def cmd_inject(addr: str | None = None, filename: str | None = None) -> Answer:
    handle = _service(addr).handle
    if not filename:
        raise SkypyError("inject needs a file name")
    try:
        source = Path(filename).read_text(encoding="utf-8")
    except OSError as exc:
        raise SkypyError(f"Can't open {filename}: {exc.strerror}") from None
    ok, output = await api.call(handle, "debug", "RUN", source, filename)
    if not ok:
        raise SkypyError(output.rstrip())
    return output.rstrip("\n") or None


async def cmd_netstat() -> Answer:
    def row(info: dict[str, Any]) -> dict[str, Any]:
        peer = info["address"]
        shown = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else peer
        forwarded_to = info["forwarded_to"]
        return {
            **info, "owner": address(info["owner"]), "address": shown,
            "forwarded_to": None if forwarded_to is None else address(forwarded_to),
        }

    return {info["id"]: row(info) for info in skysocket.info()}


async def cmd_signal(addr: str | None = None) -> Answer:
    svc = _service(addr)
    dog = svc.node.extensions["watchdog"]
    if not dog.can_interrupt:
        raise SkypyError("this node cannot interrupt handlers: it does not run in the main thread")
    dog.arm(svc.handle)
    return f"{address(svc.handle)}: its next handler holding the node over {dog.endless:g} s will be interrupted"


async def cmd_logon(addr: str | None = None) -> Answer:
    return str(msglog.logon(_service(addr)).path)


async def cmd_logoff(addr: str | None = None) -> Answer:
    msglog.logoff(_service(addr))
    return None


async def cmd_getenv(key: str) -> Answer:
    value = api.getenv(key)
    if value is None:
        raise SkypyError(f"getenv: {key} is not set")
    return _text(value)


async def cmd_setenv(key: str | None = None, value: str | None = None) -> Answer:
    if not key or value is None:
        raise SkypyError("setenv needs a key and a value")
    api.setenv(key, value)
    return None


async def cmd_clearcache() -> Answer:
    _node().loader.clear()
    return None


async def cmd_restart(addr: str | None = None) -> Answer:
    svc = _service(addr)
    for sup, children in supervisor.tree().items():
        if svc.handle in children:
            handle = await supervisor.restart_child(sup, svc.handle)
            return {address(handle): _describe(_node().services[handle])}
    raise SkypyError(f"{address(svc.handle)} is not supervised: kill it, or start it under a supervisor")


async def cmd_reload(addr: str | None = None) -> Answer:
    svc = _service(addr)
    await reload(svc.handle)
    return {address(svc.handle): _describe(svc)}


async def cmd_trace(tag: str | None = None) -> Answer:
    lines = [
        f"{hop.time:.3f} <TRACE {hop.tag}> {address(hop.source)} {hop.text}" for hop in tracing.hops(_node(), tag)
    ]
    return "\n".join(lines) if lines else None


# Every cmd_NAME above is the command NAME.
COMMANDS: dict[str, Callable[..., Awaitable[Answer]]] = {
    name.removeprefix("cmd_"): fn for name, fn in globals().items() if name.startswith("cmd_")
}


async def run(line: str) -> list[str]:
    """Run one command line; its answer's lines, ending with ``<CMD OK>`` or ``<CMD Error>``."""
    words = line.split()
    if not words:
        return []
    command = COMMANDS.get(words[0])
    if command is None:
        return [INVALID, "<CMD Error>"]
    # `call` takes the rest of the line whole: its arguments are Python literals.
    args = line.split(None, 2)[1:] if words[0] == "call" else words[1:]
    try:
        inspect.signature(command).bind(*args)
    except TypeError:
        return [f"Wrong arguments; {HELP[words[0]]}", "<CMD Error>"]
    try:
        answer = await command(*args)
    except Exception as exc:
        return [str(exc) if isinstance(exc, SkypyError) else f"{type(exc).__name__}: {exc}", "<CMD Error>"]
    return format_answer(answer) + ["<CMD OK>"]
