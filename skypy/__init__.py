"""skypy: skynet's actor model for Python, on trio.

Services are actors with integer handles and mailboxes; they talk with
`send` and `call`. Service code calls these module-level functions, which
act for the service running them.
"""

from importlib.metadata import PackageNotFoundError, version

from ._api.messages import Responder, call, dispatch, dispatch_commands, error, getenv, ignoreret, now, rawcall, redirect, register_protocol, response, ret, self, send, setenv
from ._api.coroutines import fork, sleep, timeout, unlocked, wait, wakeup, yield_
from ._api.lifecycle import exit, kill, localname, name, newservice, queryservice, register, uniqueservice
from ._core.config import Config
from .ops.debug import info_func
from .embed import RunningNode, open_node
from .errors import CallError, ConfigError, ResponseError, ServiceNotFound, SkypyError
from ._core.message import PTYPE_CLIENT, PTYPE_DEBUG, PTYPE_ERROR, PTYPE_LUA, PTYPE_RESPONSE, PTYPE_SOCKET, PTYPE_SYSTEM, PTYPE_TEXT, Message, address
from .serialize import PackError, UnpackError, pack, unpack
from ._core.endless import Interrupted

try:
    __version__ = version("skypy")
except PackageNotFoundError:  # running from a source checkout that was never installed
    __version__ = "0.0.0+source"
