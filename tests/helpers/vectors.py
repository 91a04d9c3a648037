"""skynet's test vectors, captured from a real skynet build (tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
PACK_VECTORS = DATA / "skynet_pack.tsv"
CLUSTER_CAPTURE = DATA / "skynet_cluster.tsv"


def cluster_capture() -> list[tuple[str, str, bytes]]:
    """The cluster capture's packets in wire order: (direction, label, packet with its length header)."""
    rows = []
    for line in CLUSTER_CAPTURE.read_text().splitlines():
        if line and not line.startswith("#"):
            direction, label, hexed = line.split("\t")
            rows.append((direction, label.split()[0], bytes.fromhex(hexed)))
    return rows
