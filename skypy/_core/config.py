"""Node configuration: a TOML file (keys named as skynet names them), checked up front.

A bad config stops start-up with one line naming the file, the key and the
reason; nothing is half-started. Values given later (``skypy run --set``,
``open_node(**overrides)``, a multi-node config's ``[node.NAME]`` tables)
are merged over the file's key by key: a table given again keeps the keys
it does not mention, so ``--set env.kv_port=7001`` leaves ``env.kv_host``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import tempfile
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
    # Message logs (the console's `logon`): the log file's folder, else a
    # temporary one; never the current folder, which may be a source tree.
    logpath: Path = attrs.Factory(lambda: Path(tempfile.gettempdir()))
    copy_messages: bool = False
    env: dict[str, Any] = attrs.Factory(dict)
    console: dict[str, Any] | None = None
    # The node's web page and /metrics (skypy.ops.web): host, port, token; None: not served.
    web: dict[str, Any] | None = None
    # Log lines: `level` (the lowest written: "debug", "info", "warning",
    # "error") and `format` ("skynet" lines, or "json" objects).
    log: dict[str, Any] = attrs.Factory(dict)
    # Traces: `otlp`, the URL of an OTLP/HTTP collector their hops go to as spans.
    trace: dict[str, Any] = attrs.Factory(dict)
    cluster: dict[str, Any] = attrs.Factory(dict)
    node: str | None = None
    nodes: list[str] = attrs.Factory(list)
    watchdog: dict[str, Any] = attrs.Factory(dict)
    # skypy.datacenter: `node`, the cluster node holding the tree (else each node holds its own).
    datacenter: dict[str, Any] = attrs.Factory(dict)
    # Python's cyclic collector for the node's process: `threshold` (its
    # first generation's, 0: Python's own) and `freeze` (after start-up).
    # Empty: leave it as it is (`skypy run` has its own default).
    gc: dict[str, Any] = attrs.Factory(dict)
    # [[supervise]]: supervision trees started at boot, before `start`; each
    # a table of strategy, intensity, period, name and its `children` tables.
    supervise: list[dict[str, Any]] = attrs.Factory(list)
    # [shutdown] timeout: seconds the node's services get to stop gracefully
    # (their stop hooks) when the node stops, before the rest are killed.
    shutdown: dict[str, Any] = attrs.Factory(dict)
    # A multi-node config's `[node.NAME]` tables: keys that node takes over
    # the shared ones (`select_node` applies them).
    node_tables: dict[str, dict[str, Any]] = attrs.Factory(dict)
    base_dir: Path = attrs.Factory(Path.cwd)

    def value(self, key: str) -> Any:
        """The top-level config key `key` as the file gives it (paths as strings), or None.

        What `getenv` falls back to, as skynet's env holds every config key.
        """
        if key not in _CHECKS or key == "node" and self.node is None:
            return None
        value = getattr(self, key)
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list):
            return [str(v) if isinstance(v, Path) else v for v in value]
        return value


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
    "console": (
        "a table (host, port, greeting_delay), or false for none",
        lambda v: isinstance(v, dict) or v is False or v is None,
    ),
    "web": (
        "a table (host, port, token), or false for none",
        lambda v: isinstance(v, dict) or v is False or v is None,
    ),
    "log": ("a table (level, format)", lambda v: isinstance(v, dict)),
    "trace": ("a table (otlp)", lambda v: isinstance(v, dict)),
    "watchdog": ("a table (endless, interrupt, signal)", lambda v: isinstance(v, dict)),
    "datacenter": ("a table (node)", lambda v: isinstance(v, dict)),
    "gc": ("a table (threshold, freeze)", lambda v: isinstance(v, dict)),
    "supervise": (
        "an array of tables [[supervise]] (strategy, intensity, period, name, children)",
        lambda v: isinstance(v, list) and all(isinstance(t, dict) for t in v),
    ),
    "shutdown": ("a table (timeout)", lambda v: isinstance(v, dict)),
    "cluster": (
        'a table of node = "host:port" or false, and the settings allow, heartbeat, max_request',
        lambda v: isinstance(v, dict) and all(_node_address(a) for k, a in v.items() if k not in CLUSTER_SETTINGS),
    ),
    "node": (
        "the name of this node in [cluster] (string), or [node.NAME] tables of per-node keys",
        lambda v: isinstance(v, str) and v != "" or isinstance(v, dict) and all(isinstance(t, dict) for t in v.values()),
    ),
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
    "token": ("a secret (a non-empty string)", lambda v: isinstance(v, str) and v != ""),
}


_WEB_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    key: _CONSOLE_CHECKS[key] for key in ("host", "port", "token")
}

# Python logging's level numbers, by the names [log] level takes.
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

_LOG_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "level": ('one of "debug", "info", "warning", "error"', lambda v: v in LOG_LEVELS),
    "format": ('"skynet" (lines as skynet writes them) or "json" (one object a line)', lambda v: v in ("skynet", "json")),
}


_TRACE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "otlp": (
        'the URL of an OTLP/HTTP collector, such as "http://127.0.0.1:4318/v1/traces"',
        lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
    ),
}


# The endless-loop watchdog (endless.py): report a handler after `endless`
# seconds, interrupt it after `interrupt` (0: never), on `signal` ("": none).
_WATCHDOG_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "endless": ("a number of seconds > 0", lambda v: _seconds(v) and v > 0),
    "interrupt": ("a number of seconds (0: never)", _seconds),
    "signal": ("a signal name such as \"SIGUSR1\", or \"\"", lambda v: v == "" or v in _CATCHABLE),
    # `skypy run`: seconds a node gets to stop after Ctrl-C or SIGTERM before
    # the process ends anyway (a handler stuck in a loop holds it).
    "stop": ("a number of seconds > 0", lambda v: _seconds(v) and v > 0),
}


# skypy.datacenter: which node of the cluster holds the tree.
_DATACENTER_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "node": ("the name of the node in [cluster] that holds the tree (string)", lambda v: isinstance(v, str) and v != ""),
}


# The node process's cyclic garbage collector (applied by open_node).
_GC_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "threshold": ("a whole number of allocations >= 0 (0: Python's own)", lambda v: type(v) is int and v >= 0),
    "freeze": ("true or false", lambda v: type(v) is bool),
}


def _local_name(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(".") and len(v) > 1


# A [[supervise]] table: one supervisor started at boot (skypy.supervisor.start's arguments).
_SUPERVISE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "strategy": (
        "one of one_for_one, one_for_all, rest_for_one, simple_one_for_one",
        lambda v: v in ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"),
    ),
    "intensity": ("a count of restarts >= 0", lambda v: type(v) is int and v >= 0),
    "period": ("a number of seconds > 0", lambda v: _seconds(v) and v > 0),
    "name": ("a local name such as \".sup\"", _local_name),
    "children": (
        "an array of tables [[supervise.children]] (service, args, name, restart, shutdown, crash_policy)",
        lambda v: isinstance(v, list) and v != [] and all(isinstance(t, dict) for t in v),
    ),
}

# One child of a [[supervise]] table (skypy.supervisor.child's arguments).
_CHILD_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "service": ("a service name (string)", lambda v: isinstance(v, str) and v != ""),
    "args": ("a list of strings, numbers or booleans", lambda v: isinstance(v, list) and all(map(_scalar, v))),
    "name": ("a local name such as \".db\"", _local_name),
    "restart": ("one of permanent, transient, temporary", lambda v: v in ("permanent", "transient", "temporary")),
    "shutdown": ('a number of seconds, or "infinity"', lambda v: _seconds(v) or v == "infinity"),
    "crash_policy": ("log or exit", lambda v: v in ("log", "exit")),
}

_SHUTDOWN_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "timeout": ("a number of seconds > 0", lambda v: _seconds(v) and v > 0),
}


# skynet config keys with no skypy equivalent, and what takes their place.
SKYNET_KEYS = {
    "thread": "a node runs on one core; list several nodes in `nodes` to use more cores",
    "daemon": "skypy runs in the foreground; run it under a supervisor (systemd, docker) or nohup",
    "bootstrap": "skypy starts its logger itself; name your first service in `start`",
    "luaservice": "services are Python files found on `service_path`",
    "lualoader": "services are Python files found on `service_path`",
    "lua_path": "services import Python modules as usual; `service_path` lists service folders",
    "lua_cpath": "services import Python modules as usual",
    "cpath": "there are no C services; services are Python files on `service_path`",
    "standalone": "nodes join with [cluster], not harbor's master/slave",
    "master": "nodes join with [cluster], not harbor's master/slave",
    "address": "nodes join with [cluster], not harbor's master/slave",
    "preload": "import what every service needs in the services themselves",
}


# The tables whose keys are checked one by one, and their checks.
_TABLE_CHECKS = {
    "console": _CONSOLE_CHECKS, "web": _WEB_CHECKS, "log": _LOG_CHECKS, "trace": _TRACE_CHECKS,
    "watchdog": _WATCHDOG_CHECKS, "datacenter": _DATACENTER_CHECKS, "gc": _GC_CHECKS, "shutdown": _SHUTDOWN_CHECKS,
}


def _check(source: str, table: dict[str, Any], checks: dict[str, tuple[str, Callable[[Any], bool]]], prefix: str = "") -> None:
    for key, value in table.items():
        if key not in checks:
            if not prefix and key in SKYNET_KEYS:
                raise ConfigError(f"{source}: key '{key}' is skynet's, not skypy's: {SKYNET_KEYS[key]}")
            known = ", ".join(sorted(checks))
            hint = "; a value of your own: put it under [env], where getenv reads it" if not prefix else ""
            raise ConfigError(f"{source}: unknown key '{prefix}{key}' (known keys: {known}){hint}")
        what, ok = checks[key]
        if not ok(value):
            raise ConfigError(f"{source}: key '{prefix}{key}' must be {what}, not {value!r}")


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` over `old`, table by table: a key `new` does not mention keeps its value."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def build(source: str, values: dict[str, Any], base_dir: Path | None = None, base: Config | None = None) -> Config:
    """A Config from `values` checked key by key, merged over `base`; relative paths are taken from `base_dir`."""
    _check(source, values, _CHECKS)
    for key, checks in _TABLE_CHECKS.items():
        if isinstance(values.get(key), dict):
            _check(source, values[key], checks, f"{key}.")
    for i, tree in enumerate(values.get("supervise") or []):
        _check(source, tree, _SUPERVISE_CHECKS, f"supervise[{i}].")
        if "children" not in tree:
            raise ConfigError(f"{source}: key 'supervise[{i}].children' is missing: a supervisor needs children")
        for j, child in enumerate(tree["children"]):
            _check(source, child, _CHILD_CHECKS, f"supervise[{i}].children[{j}].")
            if "service" not in child:
                raise ConfigError(f"{source}: key 'supervise[{i}].children[{j}].service' is missing")
    if isinstance(values.get("cluster"), dict):
        settings = {k: v for k, v in values["cluster"].items() if k in CLUSTER_SETTINGS}
        _check(source, settings, CLUSTER_SETTINGS, "cluster.")
    # A config built over a file's still comes from that file (cluster.reload
    # re-reads it); `source` names where these values came from, in errors.
    keeps_source = base is not None and base.source != "defaults"
    config = attrs.evolve(base or Config()) if keeps_source else attrs.evolve(base or Config(), source=source)
    here = base_dir or config.base_dir
    if base_dir is not None:
        config.base_dir = base_dir
    for key, value in values.items():
        if key == "service_path":
            value = [here / p for p in value] + [shipped("services")]
        elif key in ("logger", "logpath"):
            value = here / value
        elif key in ("console", "web") and value is False:
            value = None
        elif key == "node" and isinstance(value, dict):
            key, value = "node_tables", _merged(config.node_tables, value)
        elif isinstance(value, dict):
            value = _merged(getattr(config, key) or {}, value)
        setattr(config, key, value)
    if "logger" in values and "logpath" not in values and config.logger is not None:
        config.logpath = config.logger.parent
    _check_logger(source, config.logger)
    for key in ("console", "web"):
        table = getattr(config, key)
        if table is not None:
            _check_exposure(source, key, table)
    if config.start is not None:
        try:
            ServiceLoader(config.service_path).find(config.start)
        except ServiceNotFound as exc:
            raise ConfigError(f"{source}: key 'start': {exc}") from None
    for i, tree in enumerate(config.supervise):
        for j, child in enumerate(tree["children"]):
            try:
                ServiceLoader(config.service_path).find(child["service"])
            except ServiceNotFound as exc:
                raise ConfigError(f"{source}: key 'supervise[{i}].children[{j}].service': {exc}") from None
    # A node run from this config must have an address to listen at.
    for key, names in (("node", [config.node] if config.node else []), ("nodes", config.nodes)):
        for name in names:
            if not config.cluster.get(name):
                raise ConfigError(f"{source}: key '{key}': {name!r} has no address in [cluster]")
    for name, table in config.node_tables.items():
        if "node" in table or "nodes" in table:
            raise ConfigError(f"{source}: [node.{name}] cannot set 'node' or 'nodes'")
        _check(source, table, _CHECKS, f"node.{name}.")
    return config


def _check_exposure(source: str, key: str, table: dict[str, Any]) -> None:
    """A console or web page off loopback without a token would let anyone who reaches it
    run code in the node, or kill its services."""
    host = table.get("host", "127.0.0.1")
    if "token" in table or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(
        f"{source}: key '{key}.host': {host} is not a loopback address, and anyone who reaches"
        f" the {key} can change the node: set {key}.token too, or use 127.0.0.1"
    )


def _check_logger(source: str, logger: Path | None) -> None:
    """A log file the node could not open is a config error, found before anything starts."""
    if logger is None:
        return
    folder = logger.parent
    if logger.is_dir():
        raise ConfigError(f"{source}: key 'logger': {logger} is a folder, not a file")
    if not folder.is_dir():
        raise ConfigError(f"{source}: key 'logger': no folder {folder} to write {logger.name} in")
    if not os.access(logger if logger.exists() else folder, os.W_OK):
        raise ConfigError(f"{source}: key 'logger': {logger} is not writable")


def select_node(config: Config, name: str) -> Config:
    """`config` as node `name` runs it: its ``[node.NAME]`` table merged over the shared keys."""
    table = config.node_tables.get(name, {})
    return build(config.source, {**table, "node": name}, config.base_dir, base=config)


def assignments(texts: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` settings (``skypy run --set``) as config values: a dotted key names a
    key in a table (``console.port=0``), and VALUE is TOML (a bare word is a string)."""
    values: dict[str, Any] = {}
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {text}: expected KEY=VALUE, such as console.port=0")
        try:
            value = tomllib.loads(f"value = {raw.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        parts = key.split(".")
        for part in reversed(parts[1:]):
            value = {part: value}
        values = _merged(values, {parts[0]: value})
    return values


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
