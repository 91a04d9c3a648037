"""skypy: skynet's actor model for Python, on trio.

Services are actors with integer handles and mailboxes; they talk with
`send` and `call`. Service code calls these module-level functions, which
act for the service running them.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

# Every public name is re-exported explicitly (`x as x`), as trio does, so
# type checkers under --no-implicit-reexport and readers see what is public.
from . import log as log
from ._api.coroutines import (
    fork as fork,
    sleep as sleep,
    timeout as timeout,
    unlocked as unlocked,
    wait as wait,
    wakeup as wakeup,
    yield_ as yield_,
)
from ._api.critical import CriticalSection as CriticalSection, queue as queue
from ._api.lifecycle import (
    crash_policy as crash_policy,
    exit as exit,
    kill as kill,
    localname as localname,
    name as name,
    newservice as newservice,
    queryservice as queryservice,
    register as register,
    uniqueservice as uniqueservice,
)
from ._api.messages import (
    Responder as Responder,
    call as call,
    dispatch as dispatch,
    dispatch_commands as dispatch_commands,
    error as error,
    getenv as getenv,
    ignoreret as ignoreret,
    mailbox_limit as mailbox_limit,
    now as now,
    rawcall as rawcall,
    redirect as redirect,
    register_protocol as register_protocol,
    response as response,
    ret as ret,
    self as self,
    send as send,
    setenv as setenv,
)
from ._api.monitors import demonitor as demonitor, monitor as monitor
from ._api.reload import ReloadError as ReloadError, reload as reload
from ._api.stopping import on_stop as on_stop
from ._api.tracing import trace as trace, tracetag as tracetag
from ._core.config import Config as Config
from ._core.endless import Interrupted as Interrupted
from ._core.message import (
    PTYPE_CLIENT as PTYPE_CLIENT,
    PTYPE_DEBUG as PTYPE_DEBUG,
    PTYPE_ERROR as PTYPE_ERROR,
    PTYPE_HARBOR as PTYPE_HARBOR,
    PTYPE_LUA as PTYPE_LUA,
    PTYPE_MULTICAST as PTYPE_MULTICAST,
    PTYPE_RESPONSE as PTYPE_RESPONSE,
    PTYPE_SOCKET as PTYPE_SOCKET,
    PTYPE_SYSTEM as PTYPE_SYSTEM,
    PTYPE_TEXT as PTYPE_TEXT,
    PTYPE_TRACE as PTYPE_TRACE,
    Message as Message,
    address as address,
    handle as handle,
)
from ._core.monitors import ExitReason as ExitReason, Monitor as Monitor
from .embed import RunningNode as RunningNode, open_node as open_node
from .errors import (
    CallError as CallError,
    ConfigError as ConfigError,
    Overloaded as Overloaded,
    ResponseError as ResponseError,
    ServiceNotFound as ServiceNotFound,
    SkypyError as SkypyError,
    StartError as StartError,
)
from .ops.debug import info_func as info_func
from .serialize import PackError as PackError, UnpackError as UnpackError, pack as pack, unpack as unpack

# What `from skypy import *` brings in. `exit` (skynet's name) stays out, as
# would any name of a builtin, so a star import never shadows the builtin;
# write `skypy.exit()`.
__all__ = [
    "PTYPE_CLIENT", "PTYPE_DEBUG", "PTYPE_ERROR", "PTYPE_HARBOR", "PTYPE_LUA", "PTYPE_MULTICAST",
    "PTYPE_RESPONSE", "PTYPE_SOCKET", "PTYPE_SYSTEM", "PTYPE_TEXT", "PTYPE_TRACE",
    "CallError", "Config", "CriticalSection", "ConfigError", "ExitReason", "Interrupted", "Message", "Monitor",
    "Overloaded", "PackError", "ReloadError", "Responder",
    "ResponseError", "RunningNode", "ServiceNotFound", "SkypyError", "StartError", "UnpackError",
    "address", "call", "crash_policy", "demonitor", "dispatch", "dispatch_commands", "error", "fork", "getenv",
    "handle", "ignoreret",
    "info_func", "kill", "localname", "log", "mailbox_limit", "monitor", "name", "newservice", "now", "on_stop",
    "open_node", "pack", "queryservice", "queue",
    "rawcall", "redirect", "register", "register_protocol", "reload", "response", "ret", "self", "send",
    "setenv", "sleep", "timeout", "trace", "tracetag", "uniqueservice", "unlocked", "unpack", "wait", "wakeup", "yield_",
]

try:
    __version__ = _version("skypy")
except _PackageNotFoundError:  # running from a source checkout that was never installed
    __version__ = "0.0.0+source"
