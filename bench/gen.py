#!/usr/bin/env python3
"""Generate a large topology: N host names routed over M services (2 servers each), one HTTP listener.

    python bench/gen.py --hosts 10000 --services 10000 -o bench/out/10k.yaml

Host i is h<i>.bench.test and goes to service i mod M. Addresses are on 127.0.0.0/8, so the same
file can be served by a proxy on this machine (see run.py). With --paths 2 every host also routes
`/api/` (stripped) to the next service and exactly `/health` to the one after: path routing at scale.
With --features every service also has an HTTP health check and cookie stickiness, as most real
services do (the bare topology missed a quadratic health-check path: 35 s at 10,000 services).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import yaml


def topology(hosts: int, services: int, vip: str = "127.0.0.40", port: int = 8080,
             servers: tuple[tuple[str, int], ...] = (("127.0.0.61", 9000), ("127.0.0.62", 9000)),
             paths: int = 0, features: bool = False) -> dict:
    if hosts < 1 or not 1 <= services <= hosts:
        raise ValueError("need 1 <= services <= hosts")
    svcs = {f"svc{j:05d}": {"servers": [{"name": f"s{k}", "address": a, "port": p}
                                        for k, (a, p) in enumerate(servers, 1)]}
            for j in range(services)}
    if features:
        for svc in svcs.values():
            svc.update(copy.deepcopy(FEATURES))  # shared dicts would be written as YAML aliases
    routes: dict[int, list[str]] = {}
    for i in range(hosts):
        routes.setdefault(i % services, []).append(host(i))
    table = []
    for j, hs in sorted(routes.items()):
        table.append({"hosts": hs, "service": f"svc{j:05d}"})
        for k, match in enumerate(PATHS[:paths], 1):
            table.append({"hosts": list(hs), **match, "service": f"svc{(j + k) % services:05d}"})
    return {"lbc": 1, "name": f"bench-{hosts}h-{services}s" + (f"-{paths}p" if paths else "") + ("-f" if features else ""),
            "vips": {"v": {"address": vip}}, "services": svcs,
            "listeners": [{"name": "web", "vip": "v", "port": port, "routes": table}]}


FEATURES = {"health": {"http": {"path": "/health"}, "interval": "5s"}, "stickiness": {"mode": "cookie"}}
PATHS = ({"path_prefix": "/api/", "strip_prefix": True}, {"path_exact": "/health"})


def host(i: int) -> str:
    return f"h{i:05d}.bench.test"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hosts", type=int, required=True)
    p.add_argument("--services", type=int)
    p.add_argument("--paths", type=int, default=0, choices=range(len(PATHS) + 1),
                   help="path routes per host besides its route for every path (0-2)")
    p.add_argument("--features", action="store_true", help="a health check and cookie stickiness on every service")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    a = p.parse_args()
    text = yaml.safe_dump(topology(a.hosts, a.services or a.hosts, paths=a.paths, features=a.features), sort_keys=False)
    if a.output:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
