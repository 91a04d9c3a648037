"""The layers of the tree: each module imports only from its own layer or those below it.

Bottom to top: errors and netpack framing, which import nothing → the core (skypy/_core) → the service API
(skypy/_api, skypy.lowlevel) → the socket server (skypy/_net) → the public
libraries → the operator tools (skypy/ops) → embedding (skypy.embed) → the
``skypy`` namespace → the command and skypy.testing → the shipped services,
which use public modules only. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (layer, module or package prefix); a module takes the first entry that matches.
LAYERS: list[tuple[int, str]] = [
    (0, "skypy.errors"),
    (0, "skypy.netpack"),  # pure framing, which the socket server cuts forwarded input with
    (1, "skypy._core"),
    (2, "skypy._api"),
    (2, "skypy.lowlevel"),
    (3, "skypy._net"),
    (4, "skypy.socket"),
    (4, "skypy.socketchannel"),
    (4, "skypy.serialize"),
    (4, "skypy._weburl"),
    (4, "skypy.cluster"),
    (4, "skypy.sharetable"),
    (4, "skypy.datacenter"),
    (4, "skypy.multicast"),
    (4, "skypy.http"),
    (4, "skypy.supervisor"),
    (4, "skypy.websocket"),
    (4, "skypy.log"),
    (5, "skypy.ops"),
    (6, "skypy.embed"),
    (7, "skypy"),  # the namespace users import: skypy/__init__.py
    (8, "skypy.cli"),
    (8, "skypy.__main__"),  # python -m skypy: the command
    (8, "skypy._localnodes"),
    (8, "skypy.testing"),
    (9, "services"),
]


def layer_of(module: str) -> int:
    for layer, prefix in LAYERS:
        if module == prefix or (prefix != "skypy" and module.startswith(prefix + ".")):
            return layer
    raise LookupError(module)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted([*(ROOT / "skypy").rglob("*.py"), *(ROOT / "services").glob("*.py")])


MODULES = {module_name(path) for path in source_files()}


def imported(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for each skypy module that `source` imports, wherever the import statement is."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # `from . import x` names a submodule when there is one.
                submodule = f"{target}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else target))
    return [(line, name) for line, name in found if name == "skypy" or name.startswith("skypy.")]


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_from_its_layer_or_below(path: Path) -> None:
    module = module_name(path)
    assert upward_imports(path.read_text(), module, path.name == "__init__.py") == []


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    mine = layer_of(module)
    return [
        f"{module} (layer {mine}) line {line} imports {name} (layer {layer_of(name)})"
        for line, name in imported(source, module, is_package)
        if layer_of(name) > mine
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "services").glob("*.py")), ids=lambda p: p.name)
def test_a_shipped_service_uses_public_modules_only(path: Path) -> None:
    private = [
        f"line {line}: {name}"
        for line, name in imported(path.read_text(), f"services.{path.stem}")
        if any(part.startswith("_") for part in name.split("."))
    ]
    assert not private, f"services/{path.name} imports private modules: {private}"


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)  # LookupError names a module added outside every layer


def test_an_upward_import_is_caught_however_it_is_written() -> None:
    # The core importing the debug protocol, as it once did.
    assert len(upward_imports("from ..ops import debug", "skypy._core.node")) == 1
    assert len(upward_imports("def f():\n    import skypy.socket", "skypy._net.server")) == 1
    assert len(upward_imports("from .. import cluster", "skypy._api.messages")) == 1
    assert upward_imports("from .service import Service", "skypy._core.node") == []
