"""What every output folder's README tells the operator, in one place for the targets that share it:
the files the configuration reads that lbc does not write, and what the servers behind must do."""
from __future__ import annotations

import jinja2

from lbc import appsettings
from lbc.model import Topology

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("lbc.templates", "readme"), undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def deployed_files(model: Topology) -> list[tuple[str, str]]:
    """(path as written, what) for every file the configuration names that lbc does not write."""
    out: dict[str, str] = {}
    for l in model.listeners:
        if l.decrypts:
            for name in l.tls.certificates:
                c = model.certificate(name)
                out.setdefault(c.cert, f"certificate '{name}' (chain; may also hold the key)")
                if c.key and c.key != c.cert:
                    out.setdefault(c.key, f"private key of certificate '{name}'")
            if l.tls.client_auth != "none" and l.tls.client_ca:
                out.setdefault(l.tls.client_ca, f"CA of client certificates, listener '{l.name}'")
        if l.tls.mode == "bridge":
            for r in l.routes:
                if r.service is None:    # a redirect: no server is reached
                    continue
                u = model.service(r.service).upstream_tls
                if u and u.verify and u.ca:
                    out.setdefault(u.ca, f"CA of the servers' certificates, service '{r.service}'")
    return sorted(out.items())


def application_notes(model: Topology, active_health: bool) -> list[str]:
    """What the servers behind the balancer must do or know, one sentence each."""
    notes: list[str] = []
    l7 = [l for l in model.listeners if l.reads_http]
    if any(l.forwarded_headers for l in l7):
        notes.append("On HTTP listeners the servers see the balancer's address; the client's address is in "
                     "`X-Forwarded-For` and the scheme it used in `X-Forwarded-Proto`.")
    for s in model.services:
        if s.proxy_protocol != "none":
            notes.append(f"Service '{s.name}' sends a PROXY protocol {s.proxy_protocol} header first: "
                         "its servers must expect it.")
        if s.stickiness.mode == "cookie":
            notes.append(f"Service '{s.name}': the balancer sets the cookie `{s.stickiness.cookie_name}` "
                         "(HttpOnly; Secure over TLS); the application must not use that name.")
        u = s.upstream_tls
        if u:
            name = u.verify_name or "their address"
            notes.append(f"Service '{s.name}' is reached over TLS: its servers present a certificate for {name}"
                         + (f", signed by `{u.ca}`." if u.verify and u.ca else "."))
        if active_health and s.health:
            h = s.health
            if h.kind == "http":
                body = f" and a body containing `{h.expect_body}`" if h.expect_body else ""
                notes.append(f"Service '{s.name}': each server answers `GET {h.http_path}` with status "
                             f"{h.expect_status}{body} while it should take traffic.")
            else:
                notes.append(f"Service '{s.name}': each server accepts TCP connections while it should take traffic.")
    return notes


def readme(template: str, model: Topology, **context) -> str:
    return _ENV.get_template(template).render(model=model, files=deployed_files(model),
                                              app_settings=appsettings.markdown(model), **context)


def observability_notes(model: Topology, metrics: str) -> list[str]:
    """Where the access logs and the metrics are (operating notes); `metrics` says what the target serves."""
    notes: list[str] = []
    by_log: dict = {}
    for l in model.listeners:
        if l.access_log is not None:
            by_log.setdefault(l.access_log, []).append(l.name)
    for log, names in by_log.items():
        where = {"stdout": "the proxy's standard output (the container's log)", "stderr": "the proxy's standard error",
                 "file": f"the file `{log.file}`", "none": "nowhere (off)",
                 "syslog": f"the syslog server {log.syslog_address}:{log.syslog_port} (UDP, facility {log.facility})"}
        fmt = "" if not log.on else f", one line per request (L7) or connection (L4) in lbc's {log.format} format " \
                                    "(docs/logs.md)"
        notes.append(f"Access log of listener{'s' if len(names) > 1 else ''} {', '.join(names)}: "
                     f"{where[log.to]}{fmt}.")
    if model.admin is not None:
        a = model.admin
        host = f"[{a.address}]" if ":" in a.address else a.address
        notes.append(f"Metrics on the admin endpoint http://{host}:{a.port}: {metrics}")
    return notes
