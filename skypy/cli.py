"""The ``skypy`` command: ``skypy run [CONFIG] [--node NAME]...`` runs nodes until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import trio

from . import __version__, _localnodes as localnodes
from ._core import config
from .embed import open_node
from .errors import ConfigError
from .ops.watch import watcher

__all__ = ["EXIT_BAD_CONFIG", "main", "run_node"]

EXIT_BAD_CONFIG = 2


async def run_node(settings: config.Config, watch: bool = False) -> None:
    """Run a node until SIGINT or SIGTERM; SIGHUP asks the logger to reopen its file."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with open_node(settings) as node:
            if watch:
                await node.newservice(watcher)
            async for signum in signals:
                if signum != signal.SIGHUP:
                    break
                node.send(".logger", "system", "reopen")
                node.node.log(node.handle, "SIGHUP: log file reopened")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skypy", description="Run skypy nodes: skynet's actor model on trio.")
    parser.add_argument("--version", action="version", version=f"skypy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a node from a TOML config (default: the shipped example)")
    run.add_argument("config", nargs="?", type=Path, help=f"config file (default: {config.default_config_path()})")
    run.add_argument(
        "--node", action="append", metavar="NAME",
        help="run cluster node NAME of the config; several --node run one process each "
        "(default: the config's `nodes`)",
    )
    run.add_argument(
        "--watch", action="store_true",
        help="reload each service in place when its file changes (one node; needs pip install 'skypy[watch]')",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``skypy`` command with `argv` (default: the process's); the exit status."""
    args = _parser().parse_args(argv)
    path = args.config or config.default_config_path()
    try:
        settings = config.load(path)
        names = args.node or settings.nodes
        if len(names) == 1:
            settings = config.build(settings.source, {"node": names[0]}, base=settings)
        elif names:
            config.build(settings.source, {"nodes": names}, base=settings)  # each child runs one
    except ConfigError as exc:
        print(f"skypy: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if len(names) > 1:
        return trio.run(localnodes.run_nodes, path, names)
    trio.run(run_node, settings, args.watch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
