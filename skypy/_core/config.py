"""Node configuration: a TOML file (keys named as skynet names them), checked up front.

A bad config stops start-up with one line naming the file, the key and the
reason; nothing is half-started.
"""

from __future__ import annotations

import ipaddress
import signal
import tomllib
from pathlib import Path
from typing import Any, Callable

import attrs

from ..errors import ConfigError, ServiceNotFound
from .loader import ServiceLoader

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped(kind: str) -> Path:
    """The shipped ``services`` or ``config`` folder, installed or in a source checkout."""
    installed = _PACKAGE / "_shipped" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def default_config_path() -> Path:
    """The shipped example config, which `skypy run` uses when given none."""
    return shipped("config") / "default.toml"


@attrs.define(slots=True)
class Config:
    """What a node is started with; `source` names where it came from, for errors."""

    source: str = "defaults"
    start: str | None = None
    start_args: list[Any] = attrs.Factory(list)
    harbor: int = 0
    service_path: list[Path] = attrs.Factory(lambda: [shipped("services")])
    logger: Path | None = None
    logservice: str = "logger"
    logpath: Path = attrs.Factory(Path.cwd)
    copy_messages: bool = False
    env: dict[str, Any] = attrs.Factory(dict)
    console: dict[str, Any] | None = None
    cluster: dict[str, Any] = attrs.Factory(dict)
    node: str | None = None
    nodes: list[str] = attrs.Factory(list)
    watchdog: dict[str, Any] = attrs.Factory(dict)
    # skypy.datacenter: `node`, the cluster node holding the tree (else each node holds its own).
    datacenter: dict[str, Any] = attrs.Factory(dict)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def host_port(text: str) -> tuple[str, int] | None:
    """``"host:port"`` (``"[::1]:2528"`` for IPv6) as (host, port); None if `text` is not one."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)


def _node_address(value: Any) -> bool:
    """A [cluster] entry: ``"host:port"``, or false for a node that is down."""
    return value is False or (isinstance(value, str) and host_port(value) is not None)


def _networks(value: Any) -> bool:
    """A list of addresses and networks: ``["127.0.0.1", "10.0.0.0/8", "::1"]``."""
    if not isinstance(value, list):
        return False
    try:
        for text in value:
            ipaddress.ip_network(text, strict=False)
    except (TypeError, ValueError):
        return False
    return True


# [cluster] keys that are settings, not node names: who may connect
# (skynet's wire has no handshake to carry a credential), how long a link
# with calls outstanding may stay silent, and the largest multipart request.
CLUSTER_SETTINGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "allow": ('a list of addresses or networks, such as ["127.0.0.1", "10.0.0.0/8"]', _networks),
    "heartbeat": ("a number of seconds > 0", lambda v: type(v) in (int, float) and v > 0),
    "max_request": ("a number of bytes > 0 (an integer)", lambda v: type(v) is int and v > 0),
}


# key -> (what the value must be, its check)
_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "start": ("a service name (string)", lambda v: isinstance(v, str) and v != ""),
    "start_args": ("a list of strings, numbers or booleans", lambda v: isinstance(v, list) and all(map(_scalar, v))),
    "harbor": ("an integer 0..255", lambda v: type(v) is int and 0 <= v <= 255),
    "service_path": ("a list of folder names", lambda v: isinstance(v, list) and all(isinstance(p, (str, Path)) for p in v)),
    "logger": ("a file name (string)", lambda v: isinstance(v, (str, Path))),
    "logservice": ("a service name (string)", lambda v: isinstance(v, str) and v != ""),
    "logpath": ("a folder name (string)", lambda v: isinstance(v, (str, Path))),
    "copy_messages": ("true or false", lambda v: type(v) is bool),
    "env": ("a table of strings, numbers or booleans", lambda v: isinstance(v, dict) and all(map(_scalar, v.values()))),
    "console": ("a table (host, port, greeting_delay)", lambda v: isinstance(v, dict)),
    "watchdog": ("a table (endless, interrupt, signal)", lambda v: isinstance(v, dict)),
    "datacenter": ("a table (node)", lambda v: isinstance(v, dict)),
    "cluster": (
        'a table of node = "host:port" or false, and the settings allow, heartbeat, max_request',
        lambda v: isinstance(v, dict) and all(_node_address(a) for k, a in v.items() if k not in CLUSTER_SETTINGS),
    ),
    "node": ("the name of this node in [cluster] (string)", lambda v: isinstance(v, str) and v != ""),
    "nodes": ("a list of node names from [cluster]", lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v)),
}


# The signals a handler can be installed for.
_CATCHABLE = set(signal.Signals.__members__) - {"SIGKILL", "SIGSTOP"}


def _seconds(v: Any) -> bool:
    return type(v) in (int, float) and v >= 0


_CONSOLE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "host": ("a host name (string)", lambda v: isinstance(v, str)),
    "port": ("a port number 0..65535", lambda v: type(v) is int and 0 <= v <= 65535),
    "greeting_delay": ("a number of seconds", _seconds),
}


# The endless-loop watchdog (endless.py): report a handler after `endless`
# seconds, interrupt it after `interrupt` (0: never), on `signal` ("": none).
_WATCHDOG_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "endless": ("a number of seconds > 0", lambda v: _seconds(v) and v > 0),
    "interrupt": ("a number of seconds (0: never)", _seconds),
    "signal": ("a signal name such as \"SIGUSR1\", or \"\"", lambda v: v == "" or v in _CATCHABLE),
}


# skypy.datacenter: which node of the cluster holds the tree.
_DATACENTER_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "node": ("the name of the node in [cluster] that holds the tree (string)", lambda v: isinstance(v, str) and v != ""),
}


def _check(source: str, table: dict[str, Any], checks: dict[str, tuple[str, Callable[[Any], bool]]], prefix: str = "") -> None:
    for key, value in table.items():
        if key not in checks:
            known = ", ".join(sorted(checks))
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' (known keys: {known})")
        what, ok = checks[key]
        if not ok(value):
            raise ConfigError(f"{source}: key '{prefix}{key}' must be {what}, not {value!r}")


def build(source: str, values: dict[str, Any], base_dir: Path | None = None, base: Config | None = None) -> Config:
    """A Config from `values` checked key by key; relative paths are taken from `base_dir`."""
    _check(source, values, _CHECKS)
    if isinstance(values.get("console"), dict):
        _check(source, values["console"], _CONSOLE_CHECKS, "console.")
    if isinstance(values.get("watchdog"), dict):
        _check(source, values["watchdog"], _WATCHDOG_CHECKS, "watchdog.")
    if isinstance(values.get("datacenter"), dict):
        _check(source, values["datacenter"], _DATACENTER_CHECKS, "datacenter.")
    if isinstance(values.get("cluster"), dict):
        settings = {k: v for k, v in values["cluster"].items() if k in CLUSTER_SETTINGS}
        _check(source, settings, CLUSTER_SETTINGS, "cluster.")
    here = base_dir or Path.cwd()
    config = attrs.evolve(base or Config(), source=source)
    for key, value in values.items():
        if key == "service_path":
            value = [here / p for p in value] + [shipped("services")]
        elif key in ("logger", "logpath"):
            value = here / value
        setattr(config, key, value)
    if config.start is not None:
        try:
            ServiceLoader(config.service_path).find(config.start)
        except ServiceNotFound as exc:
            raise ConfigError(f"{source}: key 'start': {exc}") from None
    # A node run from this config must have an address to listen at.
    for key, names in (("node", [config.node] if config.node else []), ("nodes", config.nodes)):
        for name in names:
            if not config.cluster.get(name):
                raise ConfigError(f"{source}: key '{key}': {name!r} has no address in [cluster]")
    return config


def load(path: str | Path) -> Config:
    """Read and check a TOML config file."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            values = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: bad TOML: {exc}") from None
    return build(str(path), values, path.resolve().parent)
