"""F5 BIG-IP target, AS3 flavour: the same plan as the tmsh target, as an AS3 declaration.

Output:
  as3.json    an AS3 request (class AS3, action deploy) with one Tenant (the topology) holding one
              Application `lbc`; built as data and serialised with sorted keys
  README.md   how to install the certificate files it points to, and how to post it

AS3 names TLS from BIG-IP's side: TLS_Server is the client-ssl profile, TLS_Client the server-ssl
one. The declaration states values whose AS3 defaults differ from tmsh's (persistenceMethods,
minimumMembersActive, redirect80, tls1_3Enabled) so both outputs configure the same thing.
`check_references` resolves what F5's schema does not: `use` pointers, and the pools and members
named inside the iRules.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Optional

from lbc import appsettings, jsonout
from lbc.capabilities import NATIVE, Support
from lbc.model import Topology

from . import f5_lower
from .f5_lower import Plan
from .f5_tmsh import RULE_POOL
from lbc.targets import spec

APP = "lbc"
SCHEMA_VERSION = "3.50.0"   # the oldest AS3 release lbc's declarations are written against
_RATIO_MAX = 100            # AS3 caps Pool_Member.ratio at 100 (tmsh allows 65535)


def _path_fn(tenant: str):
    return lambda local: f"/{tenant}/{APP}/{local}"


def _ratios(members) -> dict[int, int]:
    """Member index -> AS3 ratio; scaled so the largest is 100 when a weight exceeds 100."""
    top = max((m.ratio for m in members if m.ratio), default=0)
    scale = _RATIO_MAX / top if top > _RATIO_MAX else 1
    return {i: max(1, round(m.ratio * scale)) for i, m in enumerate(members) if m.ratio}


def declaration(plan: Plan) -> dict:
    tenant = plan.topology
    common = lambda local: f"/Common/{tenant}.{local}"   # noqa: E731  installed file objects (README)
    certs = {c.cert: c.cert.removesuffix(".crt") + ".certificate" for c in plan.client_ssl}
    app: dict = {"class": "Application", "template": "generic"}
    for kind in _KINDS:   # in this order: the declaration keeps it
        app.update(kind(plan, common, certs))
    return {
        "class": "AS3",
        "action": "deploy",
        "persist": True,
        "declaration": {
            "class": "ADC",
            "schemaVersion": SCHEMA_VERSION,
            "id": f"lbc-{tenant}",
            "label": f"lbc: {tenant}"[:64],   # AS3 labels hold at most 64 characters
            tenant: {"class": "Tenant", APP: app},
        },
    }


def _certificates(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Certificate objects (tmsh: f5._client_ssl)."""
    app: dict[str, Any] = {}
    for c in plan.client_ssl:
        obj: dict[str, Any] = {"class": "Certificate", "certificate": {"bigip": common(c.cert)}}
        if c.key:
            obj["privateKey"] = {"bigip": common(c.key)}
        app[certs[c.cert]] = obj
    return app


def _ca_bundles(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 CA_Bundle objects (tmsh: f5._client_ssl, _server_ssl)."""
    app: dict[str, Any] = {}
    bundles = {c.ca_file for c in plan.client_ssl if c.ca_file} | {s.ca_file for s in plan.server_ssl if s.ca_file}
    for b in sorted(bundles):
        app[b.removesuffix(".crt") + ".bundle"] = {"class": "CA_Bundle", "bundle": {"bigip": common(b)}}
    return app


def _monitors(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Monitor objects (tmsh: f5._monitors)."""
    app: dict[str, Any] = {}
    for m in plan.monitors:
        mon = {"class": "Monitor", "monitorType": m.kind, "interval": m.interval, "timeout": m.timeout,
               "timeUntilUp": m.time_until_up, "targetPort": m.alias_port or 0}
        if m.kind != "tcp":
            mon.update(send=m.send, receive=m.recv, receiveDown=m.recv_disable or "")
        app[m.local] = mon
    return app


def _persistences(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Persist objects (tmsh: f5._persistences)."""
    app: dict[str, Any] = {}
    for p in plan.persistences:
        if p.kind == "cookie":
            app[p.local] = {"class": "Persist", "persistenceMethod": "cookie", "cookieMethod": "insert",
                            "cookieName": p.cookie_name, "ttl": p.expiration, "httpOnly": True, "secure": p.secure}
        else:
            app[p.local] = {"class": "Persist", "persistenceMethod": "source-address", "duration": p.timeout,
                            "hashAlgorithm": "carp" if p.carp else "default", **({"mirror": True} if p.mirror else {})}
    return app


def _client_tls(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 TLS_Client (server-side TLS) objects (tmsh: f5._server_ssl)."""
    app: dict[str, Any] = {}
    for s in plan.server_ssl:
        tls: dict[str, Any] = {"class": "TLS_Client", "validateCertificate": s.verify, "ignoreUntrusted": not s.verify,
               "ignoreExpired": not s.verify}
        if s.ca_file:
            tls["trustCA"] = {"use": s.ca_file.removesuffix(".crt") + ".bundle"}
        if s.authenticate_name:
            tls["serverName"] = s.authenticate_name
        if s.server_name:
            tls["sendSNI"] = s.server_name
        app[s.local] = tls
    return app


def _http_profiles(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 HTTP_Profile objects (tmsh: f5._http_profiles)."""
    app: dict[str, Any] = {}
    for h in plan.http:
        prof = {"class": "HTTP_Profile", "xForwardedFor": h.xff}
        if h.proto:
            prof["insertHeader"] = {"name": "X-Forwarded-Proto", "value": h.proto}
        if h.hsts:
            prof.update(hstsInsert=True, hstsPeriod=h.hsts.max_age, hstsIncludeSubdomains=h.hsts.include_subdomains,
                        hstsPreload=h.hsts.preload)
        app[h.local] = prof
    return app


def _tcp_profiles(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 TCP_Profile objects (tmsh: f5._tcp_profiles)."""
    app: dict[str, Any] = {}
    for t in plan.tcp:
        app[t.local] = {"class": "TCP_Profile", "idleTimeout": t.idle_timeout}
    return app


def _pools(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Pool objects (tmsh: f5._pools)."""
    app: dict[str, Any] = {}
    for pool in plan.pools:
        ratios = _ratios(pool.members)
        members: list[dict[str, Any]] = []
        for i, mb in enumerate(pool.members):
            member: dict[str, Any] = {"servicePort": mb.port, "shareNodes": True,
                      "adminState": {"enabled": "enable", "disabled": "disable", "offline": "offline"}[mb.state]}
            if mb.fqdn:
                member.update(addressDiscovery="fqdn", hostname=mb.address)
            else:
                member["serverAddresses"] = [mb.address]
            if mb.connection_limit is not None:
                member["connectionLimit"] = mb.connection_limit
            if mb.priority_group is not None:
                member["priorityGroup"] = mb.priority_group
            if i in ratios:
                member["ratio"] = ratios[i]
            if mb.monitor:
                member["monitors"] = [{"use": mb.monitor}]
            members.append(member)
        obj = {"class": "Pool", "loadBalancingMode": pool.lb_mode, "minimumMembersActive": pool.min_active,
               "reselectTries": pool.reselect_tries, "members": members}
        if pool.monitor:
            obj["monitors"] = [{"use": pool.monitor}]
        app[pool.local] = obj
    return app


def _traffic_logs(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Traffic_Log_Profile objects (tmsh: f5._request_logs)."""
    return {r.local: {"class": "Traffic_Log_Profile", "responseSettings": {
        "responseEnabled": True, "responsePool": {"use": r.pool}, "responseProtocol": "mds-udp",
        "responseTemplate": r.template}} for r in plan.request_logs}
def _data_groups(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Data_Group objects of address records (tmsh: f5._data_groups)."""
    return {d.local: {"class": "Data_Group", "keyDataType": "ip", "records": [{"key": n} for n in d.networks]}
            for d in plan.data_groups}


def _rules(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 iRule objects (tmsh: f5._rules)."""
    app: dict[str, Any] = {}
    for r in plan.rules:
        # expand false: AS3 would otherwise treat backquotes in the rule as its own substitutions
        app[r.local] = {"class": "iRule", "iRule": r.text, "expand": False}
    return app


def _services(plan: Plan, common: Callable[[str], str], certs: dict[str, str]) -> dict[str, Any]:
    """AS3 Service_* and TLS_Server objects (tmsh: f5._virtuals, _client_ssl)."""
    app: dict[str, Any] = {}
    for v in plan.virtuals:
        svc: dict = {"virtualAddresses": [v.address], "virtualPort": v.port, "snat": "auto",
                     "profileTCP": {"use": v.tcp},
                     "persistenceMethods": [{"use": v.persist}] if v.persist else []}
        if v.pool:
            svc["pool"] = v.pool
        if v.rules:
            svc["iRules"] = [{"use": r} for r in v.rules]
        if v.client_ssl:
            svc["class"] = "Service_HTTPS"
            svc["redirect80"] = False
            server_name = v.local + ".tls-server"
            svc["serverTLS"] = server_name
            profiles = [c for c in plan.client_ssl if c.local in v.client_ssl]
            first = profiles[0]
            tls: dict[str, Any] = {"class": "TLS_Server", "certificates": [], "authenticationMode": first.peer_cert_mode,
                   "tls1_0Enabled": first.min_version <= "1.0", "tls1_1Enabled": first.min_version <= "1.1",
                   "tls1_2Enabled": first.min_version <= "1.2", "tls1_3Enabled": True, "ciphers": first.ciphers}
            for c in profiles:
                entry: dict[str, Any] = {"certificate": certs[c.cert]}
                if c.server_name:
                    entry["matchToSNI"] = c.server_name
                if c.sni_default:
                    entry["sniDefault"] = True
                tls["certificates"].append(entry)
            if first.ca_file:
                tls["authenticationTrustCA"] = first.ca_file.removesuffix(".crt") + ".bundle"
            app[server_name] = tls
            if v.server_ssl:
                svc["clientTLS"] = v.server_ssl
        elif v.l7:
            svc["class"] = "Service_HTTP"
        else:
            svc["class"] = "Service_TCP"
        if v.http:
            svc["profileHTTP"] = {"use": v.http}
        if v.websocket:
            svc["profileWebSocket"] = {"bigip": "/Common/websocket"}
        if v.request_log:
            svc["profileTrafficLog"] = {"use": v.request_log}
        app[v.local] = svc
    return app


_KINDS = (_certificates, _ca_bundles, _monitors, _persistences, _client_tls, _http_profiles, _tcp_profiles, _pools,
          _traffic_logs, _data_groups, _rules, _services)


# ---------------------------------------------------------------- reference checks

# property -> the class a `use` pointer or a plain-name pointer there must name
_POINTERS = {
    "pool": "Pool", "serverTLS": "TLS_Server", "clientTLS": "TLS_Client", "monitors": "Monitor",
    "persistenceMethods": "Persist", "iRules": "iRule", "profileHTTP": "HTTP_Profile", "profileTCP": "TCP_Profile",
    "certificate": "Certificate", "trustCA": "CA_Bundle", "authenticationTrustCA": "CA_Bundle",
    "profileTrafficLog": "Traffic_Log_Profile", "responsePool": "Pool",
}
_BUILTIN_BIGIP = {"/Common/websocket"}


def check_references(decl: dict, installed: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Pointers the AS3 schema does not resolve: `use` and plain-name pointers, `bigip` paths
    (built in, or installed per the README), and pools/members inside iRules."""
    problems: list[str] = []
    adc = decl.get("declaration", decl)
    tenants = {k: v for k, v in adc.items() if isinstance(v, dict) and v.get("class") == "Tenant"}
    for tname, tenant in tenants.items():
        for aname, app in tenant.items():
            if not isinstance(app, dict) or app.get("class") != "Application":
                continue
            objs = {k: v for k, v in app.items() if isinstance(v, dict) and "class" in v}
            prefix = f"/{tname}/{aname}/"

            def resolve(target: str, want: str, where: str, prefix=prefix, objs=objs) -> None:
                name = target[len(prefix):] if target.startswith(prefix) else target
                obj = objs.get(name)
                if obj is None:
                    problems.append(f"{where}: {target!r} names no object of the application")
                elif obj["class"] != want:
                    problems.append(f"{where}: {target!r} is a {obj['class']}, expected {want}")

            def walk(node, where: str, key: Optional[str]) -> None:
                if isinstance(node, dict):
                    if "use" in node and key in _POINTERS:
                        resolve(node["use"], _POINTERS[key], where)
                    if "bigip" in node:
                        path = node["bigip"]
                        if path not in _BUILTIN_BIGIP and path not in installed:
                            problems.append(f"{where}: {path} is neither built in nor installed by the README")
                    for k, v in node.items():
                        if k == "class":
                            continue
                        if isinstance(v, str) and k in _POINTERS and k != "iRules":
                            resolve(v, _POINTERS[k], f"{where}.{k}")
                        else:
                            walk(v, f"{where}.{k}", k)
                elif isinstance(node, list):
                    for i, v in enumerate(node):
                        if isinstance(v, str) and key in _POINTERS:
                            resolve(v, _POINTERS[key], f"{where}[{i}]")
                        else:
                            walk(v, f"{where}[{i}]", key)

            for name, obj in objs.items():
                walk(obj, f"{tname}.{aname}.{name}", None)
                if obj["class"] == "iRule":
                    for m in RULE_POOL.finditer(obj["iRule"]):
                        pool, addr, port = m.groups()
                        target = objs.get(pool[len(prefix):]) if pool.startswith(prefix) else None
                        if target is None or target["class"] != "Pool":
                            problems.append(f"iRule {name}: `pool {pool}` names no pool of the application")
                        elif addr and not any(addr in mb.get("serverAddresses", [mb.get("hostname")])
                                              and mb["servicePort"] == int(port) for mb in target["members"]):
                            problems.append(f"iRule {name}: `pool {pool} member {addr} {port}`: no such member")
                    for path in re.findall(r"(?<![\w/])(/[A-Za-z][\w.-]*/[A-Za-z][\w.-]*/[A-Za-z][\w.:-]*)",
                                           obj["iRule"]):
                        if not path.startswith(prefix) or path[len(prefix):] not in objs:
                            problems.append(f"iRule {name}: names {path}, which the application does not define")
    return problems


# ---------------------------------------------------------------- F5's schema

def _f5ip(value) -> bool:
    """AS3's `f5ip` format: an address, optionally %route-domain and /prefix."""
    if not isinstance(value, str):
        return True
    m = re.fullmatch(r"([^%/]+)(%[0-9]+)?(/[0-9]+)?", value)
    if not m:
        return False
    try:
        ipaddress.ip_address(m.group(1))
        return True
    except ValueError:
        return False


def schema_problems(decl: dict, schema: dict) -> list[str]:
    """Errors of `decl` against F5's AS3 JSON schema (draft-07), deepest cause first.

    The schema's own `f5ip` format is registered so bad addresses are caught; AS3's `use` pointers
    are not resolved by any schema (see check_references).
    """
    import jsonschema
    checker = jsonschema.FormatChecker()
    checker.checks("f5ip")(_f5ip)
    validator = jsonschema.Draft7Validator(schema, format_checker=checker)

    def leaves(errors):
        for e in errors:
            if e.context:
                yield from leaves(e.context)
            else:
                yield e
    problems = []
    for err in validator.iter_errors(decl):
        # a oneOf/anyOf failure explains itself only in its deepest branch
        deepest = max(leaves([err]), key=lambda e: len(e.absolute_path))
        problems.append(f"{'/'.join(str(p) for p in deepest.absolute_path)}: {deepest.message}")
    return problems


# ---------------------------------------------------------------- target

_README = """# {tenant}: F5 BIG-IP AS3 declaration written by lbc

Post `as3.json` to the BIG-IP's AS3 endpoint (`/mgmt/shared/appsvcs/declare`) after installing the
certificate files it points to. The declaration deploys Tenant `{tenant}` with one Application `{app}`;
it is the same configuration as lbc's `--target f5` output (bigip.conf), object for object.
{files}
## What lbc checked, and what it could not

lbc validated the declaration against F5's published AS3 JSON schema (when a copy was available) and
resolved every pointer the schema leaves unchecked (`use`, plain-name pointers, pools and members
named inside the iRules). No BIG-IP ran it: see docs/f5.md in the lbc repository.
"""


class F5AS3Target:
    name = "f5-as3"
    main_file = spec("f5-as3").main_file
    for_people = ("README.md",)
    summary = "F5 BIG-IP AS3 declaration (JSON), the same configuration as the f5 target"
    capabilities = f5_lower.capabilities({
        "server.weights": Support(NATIVE, "member ratio with a ratio-* load-balancing mode; AS3 caps a ratio at 100, "
                                          "so larger weights are scaled to keep their proportions"),
    })

    # AS3's schema caps monitor times (seconds); tmsh accepts longer ones.
    MONITOR_LIMITS = {"interval": 3600, "timeout": 900, "time_until_up": 1800}

    def refusals(self, model: Topology):
        yield from f5_lower.refusals(model)
        # AS3 names the objects of an application after lbc's names, and its schema wants each to end
        # with a letter, digit, '_' or '.' (a name ending in '-' cannot be declared)
        named = [(s.name, s.path) for s in model.services] + [(l.name, l.path + ("name",)) for l in model.listeners]
        for name, path in named:
            if name.endswith("-"):
                yield ("as3-name", path, f"AS3 object names cannot end with '-' ('{name}'); rename it")
        for svc in model.services:
            if svc.health is None:
                continue
            times = f5_lower.monitor_times(svc.health)
            for key, limit in self.MONITOR_LIMITS.items():
                if times[key] > limit:
                    yield (f"health.{svc.health.kind}", svc.health.path,
                           f"the monitor's {key.replace('_', ' ')} would be {times[key]} s (interval x fall + 1 for the "
                           f"timeout, interval x (rise - 1) until up), above AS3's limit of {limit} s; "
                           "shorten the interval or use the f5 (tmsh) target")

    def render(self, model: Topology) -> dict[str, str]:
        tenant = f5_lower.safe_name(model.name)
        plan = f5_lower.build_plan(model, _path_fn(tenant))
        section = f5_lower.install_section(plan.files, lambda local: f"/Common/{tenant}.{local}")
        section += appsettings.markdown(model)
        files = "\n".join([""] + section) if section else ""
        return {
            "as3.json": jsonout.dumps(declaration(plan), sort_keys=True),
            "README.md": _README.format(tenant=tenant, app=APP, files=files),
        }


TARGET = F5AS3Target()
