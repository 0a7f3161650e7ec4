"""Loopback scrape targets for the collector benchmark: simulated GPU nodes and vLLM engines, ~2,000 samples each.

Each target listens on its own 127.0.0.1 port (so each is its own ``instance``) and serves a
body made from the simulated fleet's renderings: a node target merges four 16-GPU nodes' dcgm
expositions family by family; an engine target merges sixteen vLLM replicas' expositions, each
replica's series told apart by a ``replica`` label. The target's number is written into its
GPU UUIDs, hostnames and pod names, so no two targets share a series; two fleet times alternate
from scrape to scrape, so values move.

    python benchmarks/collector_targets.py --targets 200 --ports-file ports.txt
    python benchmarks/collector_targets.py --targets 1000 --shard 0 --shards 4 --ports-file ports0.txt
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

from gpufleet.core.simfleet import FleetConfig, SimulatedFleet

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^\n]*\})?( [^\n]*)$")


def merge(texts: list[str]) -> str:
    """Merge expositions family by family (HELP and TYPE once, then every text's samples)."""
    order: list[str] = []
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for text in texts:
        family = ""
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                family = line.split()[2]
                if family not in headers:
                    order.append(family)
                    headers[family], samples[family] = [], []
                if line not in headers[family]:
                    headers[family].append(line)
            elif line and not line.startswith("#"):
                samples.setdefault(family, []).append(line)
                if family not in headers:
                    order.append(family)
                    headers[family] = []
    return "".join("\n".join(headers[f] + samples[f]) + "\n" for f in order)


def with_label(text: str, name: str, value: str) -> str:
    """Add ``name="value"`` to every sample line."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            out.append(line)
            continue
        metric, labels, rest = m.groups()
        inner = labels[1:-1] if labels else ""
        out.append(f'{metric}{{{name}="{value}"{"," + inner if inner else ""}}}{rest}')
    return "\n".join(out) + "\n"


def templates() -> dict[str, list[str]]:
    """Per kind, two bodies (two fleet times) with ``@T@`` where the target's number goes."""
    fleet = SimulatedFleet(FleetConfig(nodes=8, gpus_per_node=16, seed=3, fault_scale=0.0))
    t = fleet.cfg.start + 14 * 3600
    out: dict[str, list[str]] = {"node": [], "engine": []}
    sims = fleet.targets()
    nodes = [s for s in sims if s.kind == "node"][:4]
    engine = next(s for s in sims if s.kind == "engine")
    for step in range(2):
        fleet.advance(t + 15 * step)
        node = merge([fleet.render(s) for s in nodes])
        node = node.replace('UUID="GPU-', 'UUID="GPU-@T@-').replace('Hostname="', 'Hostname="t@T@-')
        out["node"].append(node.replace('pod="', 'pod="t@T@-'))
        replicas = [with_label(fleet.render(engine), "replica", f"t@T@-{k}") for k in range(16)]
        out["engine"].append(merge(replicas))
    return out


class Targets:
    """``n`` targets on loopback ports; every fourth one an engine. A shard serves every ``shards``-th one."""

    def __init__(self, n: int, shard: int = 0, shards: int = 1) -> None:
        self.n = n
        self.mine = list(range(shard, n, shards))
        self.bodies = templates()
        self.hits = [0] * n

    def body(self, i: int) -> bytes:
        kind = "engine" if i % 4 == 3 else "node"
        self.hits[i] += 1
        return self.bodies[kind][self.hits[i] % 2].replace("@T@", str(i)).encode()

    async def handle(self, i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"GET "):
                    break
                body = self.body(i)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self, ports_file: Path) -> None:
        servers = []
        for i in self.mine:
            srv = await asyncio.start_server(lambda r, w, i=i: self.handle(i, r, w), "127.0.0.1", 0)
            servers.append(srv)
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        tmp = ports_file.with_suffix(".tmp")
        tmp.write_text("\n".join(map(str, ports)) + "\n")
        tmp.rename(ports_file)
        await asyncio.Event().wait()


def main() -> int:
    """Serve until killed."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--ports-file", type=Path, required=True)
    ap.add_argument("--shard", type=int, default=0, help="Serve targets shard, shard + shards, ...")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    asyncio.run(Targets(args.targets, args.shard, args.shards).serve(args.ports_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
