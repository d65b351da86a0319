"""LBC2xx: TLS modes, certificates and what each mode lets the balancer see.

The examples name test certificates (certs/site.pem for *.example.com and example.com, certs/a.pem
for a.example.com, certs/b.pem for b.example.com, certs/expiring.pem, certs/ca.pem, ...). The rule
tests generate them; on another machine, LBC106 reports them missing as well.
"""
from __future__ import annotations


from .. import certs
from . import Finding, Rule, register
from .common import E, HACLOUD, I, W, cite, cookie_stickiness, host_path, https_not_decrypted, replace_in, tls_path, y



BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    certificates:
      site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
          - {name: w2, address: 10.0.0.12, port: 8080}
        health: {tcp: true}
    listeners:
      - name: web
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [site]}
        routes:
          - {hosts: [www.example.com], service: web}
    """)


def variant(*pairs: str) -> str:
    return replace_in(BASE, *pairs)


NO_CERTS = ("certificates:\n  site: {cert: certs/site.pem, key: certs/site.key, "
            "names: [\"*.example.com\", example.com]}\n")


def _per_listener(pairs):
    """Each listener once, with the first route that brought it."""
    seen = set()
    for l, r in pairs:
        if l.name not in seen:
            seen.add(l.name)
            yield l, r


# ------------------------------------------------------------------ LBC201
def check_x509(model, ctx):
    for svc in model.services:
        if not svc.x509_client_auth:
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if l.tls.mode == "passthrough":
                continue
            sticky = ""
            if svc.stickiness.mode == "cookie":
                sticky = (f"; service '{svc.name}' then cannot use cookie stickiness: "
                          f"set `stickiness: {{mode: source-ip}}`")
            yield Finding(
                tls_path(l), f"service '{svc.name}' logs users in with X.509 client certificates, but listener "
                f"'{l.name}' uses TLS mode {l.tls.mode}: the servers never see the client's certificate",
                hint=f"set `tls: {{mode: passthrough}}` on listener '{l.name}' and use source-IP stickiness "
                     f"(`stickiness: {{mode: source-ip}}`), since a balancer passing TLS through cannot read "
                     f"cookies{sticky}",
                related=((svc.path + ("x509_client_auth",), "X.509 single sign-on declared here"),))
    # Host Access for the Cloud: single sign-on by certificate needs passthrough on the session
    # servers AND the MSS ("TLS/SSL with X.509 Single Sign-On"), whichever tier declares it.
    sso = next((s for s in model.services if s.profile in HACLOUD and s.x509_client_auth), None)
    if sso is None:
        return
    for svc in model.services:
        if svc.profile not in HACLOUD or svc.x509_client_auth:
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if l.decrypts:
                yield Finding(
                    tls_path(l), f"service '{sso.name}' ({sso.profile}) logs users in with X.509 client "
                    f"certificates, so the other tier, service '{svc.name}' ({svc.profile}), needs TLS passthrough "
                    f"too, but listener '{l.name}' uses TLS mode {l.tls.mode}",
                    hint=f"set `tls: {{mode: passthrough}}` on listener '{l.name}' with source-IP stickiness, and "
                         f"`x509_client_auth: true` on service '{svc.name}'",
                    related=((sso.path + ("x509_client_auth",), "X.509 single sign-on declared here"),))


X509_BAD = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.21}
    certificates:
      site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}
    services:
      sessions:
        profile: hacloud-session
        x509_client_auth: true
        servers:
          - {name: ss1, address: 10.0.2.11, port: 7443}
          - {name: ss2, address: 10.0.2.12, port: 7443}
        health: {tcp: true}
        stickiness: {mode: cookie}
    listeners:
      - name: hacloud
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [site]}
        routes:
          - {hosts: [hacloud.example.com], service: sessions}
    """)

register(Rule(
    "LBC201", "x509-requires-passthrough", E,
    "X.509 client-certificate login at the servers requires TLS passthrough on every listener that reaches them "
    "(for Host Access for the Cloud: on both tiers, session servers and MSS).",
    "Set the listener's `tls: {mode: passthrough}` and the service's `stickiness: {mode: source-ip}`.",
    cite("000", "TLS/SSL with X.509 Single Sign-On", "000", "TLS/SSL Options"),
    why="With X.509 single sign-on the session servers and MSS read the user's client certificate during "
        "the TLS handshake. A balancer that terminates or bridges TLS completes that handshake itself, so "
        "the certificate never reaches the servers and the login cannot work. Only passthrough forwards the "
        "client's own handshake. The price: the balancer sees only encrypted bytes, so it can neither insert "
        "nor read a cookie, and persistence has to come from the client's source address. The guide asks "
        "this of the session server AND the MSS load balancers: declaring it on one tier makes a decrypting "
        "listener for the other an error too.",
    bad=X509_BAD,
    good=X509_BAD.replace(NO_CERTS, "")
                 .replace("stickiness: {mode: cookie}", "stickiness: {mode: source-ip}")
                 .replace("tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough}"),
    check=check_x509,
))


# ------------------------------------------------------------------ LBC202
def check_passthrough_cookie(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "cookie":
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if l.tls.mode == "passthrough":
                where, said = cookie_stickiness(model, svc)
                yield Finding(
                    where, f"{said}, but "
                    f"listener '{l.name}' passes TLS through: the balancer cannot insert or read a cookie "
                    "inside an encrypted stream",
                    hint="with TLS passthrough use `stickiness: {mode: source-ip}` (or application stickiness "
                         "with per-server host names routed by SNI); or decrypt at the balancer with tls mode "
                         "bridge or terminate, unless the servers need the client certificate (X.509)",
                    related=((tls_path(l), "TLS passthrough here"),))


register(Rule(
    "LBC202", "passthrough-no-cookie", E,
    "With TLS passthrough the balancer cannot read or insert cookies: stickiness must be source-IP "
    "(or application stickiness by SNI).",
    "Use `stickiness: {mode: source-ip}`, or decrypt at the balancer (tls mode bridge or terminate).",
    cite("000", "TLS/SSL Options", "004", "§3", "004", "§3.1.2 Option 2.A.2 - Cookie Based"),
    why="Cookie stickiness means the balancer adds a Set-Cookie header to a response and reads the cookie "
        "back from each request. In passthrough, requests and responses stay encrypted end to end, so the "
        "balancer sees neither; it only knows the client's address and the SNI name of the handshake. "
        "Source-IP affinity, or the application's own per-server host names (routed by SNI), are what "
        "remains. The Lightstreamer guide says the same: cookie insertion over HTTPS needs an SSL "
        "acceleration module at the balancer.",
    bad=variant(NO_CERTS, "", "tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough}",
                "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: cookie}\n"),
    good=variant(NO_CERTS, "", "tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough}",
                 "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: source-ip}\n"),
    check=check_passthrough_cookie,
))


# ------------------------------------------------------------------ LBC203
def check_cookie_needs_decrypt(model, ctx):
    for svc in model.services:
        if svc.stickiness.mode != "cookie":
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if https_not_decrypted(l):
                where, said = cookie_stickiness(model, svc)
                yield Finding(
                    where, f"{said}, but "
                    f"listener '{l.name}' on HTTPS port {l.port} does not decrypt TLS (no `tls:` mode): the "
                    "balancer cannot see the cookie",
                    hint=f"give listener '{l.name}' `tls: {{mode: terminate}}` or `{{mode: bridge}}` with a "
                         "certificate, or use source-IP stickiness",
                    related=((l.path + ("port",), "HTTPS port without TLS settings"),))


register(Rule(
    "LBC203", "cookie-needs-decryption", E,
    "Cookie stickiness on an HTTPS listener requires the balancer to decrypt: TLS mode terminate or bridge.",
    "Set the listener's `tls: {mode: terminate}` (or bridge) with a certificate, or use source-IP stickiness.",
    cite("004", "§3.1.2 Option 2.A.2 - Cookie Based", "004", "§3"),
    why="A listener on port 443 that declares no TLS handling receives TLS bytes it never opens. The cookie "
        "that stickiness depends on travels inside them, so the balancer can neither set it nor read it. "
        "The guide's cookie option over HTTPS works only because the balancer carries an SSL acceleration "
        "module that decrypts first.",
    bad=variant(NO_CERTS, "", "    tls: {mode: terminate, certificates: [site]}\n", "",
                "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: cookie}\n"),
    good=variant("    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: cookie}\n"),
    check=check_cookie_needs_decrypt,
))


# ------------------------------------------------------------------ LBC204
def route_hosts(model, l, r) -> list[tuple[str, tuple]]:
    """(host name, where it is written) for the names clients use to reach a route: its own hosts;
    in per-IP layouts (one VIP or port per name, routes without host names: Lightstreamer §3.1.1.1,
    §3.2.2.1) the pinned server's direct_host, or the name of the listener's only certificate."""
    if r.hosts:
        return [(h, host_path(model, r, k)) for k, h in enumerate(r.hosts)]
    if r.server and r.service:
        s = model.service(r.service).server(r.server)
        return [(s.direct_host, s.path + ("direct_host",))] if s.direct_host else []
    if len(l.tls.certificates) == 1:
        c = model.certificate(l.tls.certificates[0])
        name = next((n for n in c.names if not n.startswith("*.")), None)
        if name:
            return [(name, tls_path(l, "certificates") + (0,))]
    return []


def check_host_coverage(model, ctx):
    for l in model.listeners:
        if l.decrypts and not l.tls.certificates:
            yield Finding(tls_path(l), f"listener '{l.name}' uses TLS mode {l.tls.mode} but names no certificate",
                          hint="add `certificates: [NAME]` to the listener's `tls:`")
            continue
        if l.tls.mode == "none" or not l.tls.certificates:
            continue
        cs = [model.certificate(c) for c in l.tls.certificates]
        if any(not c.names for c in cs):
            continue  # names unknown (no file, none declared): LBC106 already says so
        for r in l.routes:
            for h, where in route_hosts(model, l, r):
                if any(certs.covered_by(c.names, h) for c in cs):
                    continue
                offered = "; ".join(f"'{c.name}': {', '.join(c.names)}" + (" (read from the file)"
                                    if c.names_from_file else "") for c in cs)
                yield Finding(
                    where, f"host '{h}' routed on listener '{l.name}' is not covered by its "
                    f"certificate{'s' if len(cs) > 1 else ''} ({offered})",
                    hint=f"add a certificate whose SAN covers '{h}' to the listener (SNI selects among "
                         "several), or use a multi-domain or wildcard certificate; a wildcard covers exactly "
                         "one leftmost label",
                    related=tuple((c.path, f"certificate '{c.name}'") for c in cs))


register(Rule(
    "LBC204", "certificate-covers-hosts", E,
    "A TLS listener's certificates (SAN names, wildcards) must cover every host name routed on it; "
    "a readable PEM file's own SAN list is used.",
    "Add a certificate that covers the host (SNI selects among several), or use a multi-domain / wildcard "
    "certificate.",
    cite("004", "§3 HTTPS-Based Scenarios", "004", "§3.2.1 Leverage Multi-Domain SSL Certificates"),
    why="The TLS handshake happens before the HTTP request, so the certificate is chosen before the host "
        "name in the request is known (at best from SNI). A client that reaches a host name the certificate "
        "does not list refuses the connection. When one endpoint serves several names, one certificate must "
        "list them all (SAN entries, or a wildcard for one label such as *.example.com), or the balancer "
        "must hold one certificate per name and choose by SNI. lbc matches wildcards as RFC 6125 does: "
        "exactly one whole leftmost label.",
    bad=variant('site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}',
                "a: {cert: certs/a.pem, key: certs/a.key, names: [a.example.com]}\n"
                "  b: {cert: certs/b.pem, key: certs/b.key, names: [b.example.com]}",
                "certificates: [site]", "certificates: [a]",
                "hosts: [www.example.com]", "hosts: [a.example.com, b.example.com]"),
    good=variant('site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}',
                 "a: {cert: certs/a.pem, key: certs/a.key, names: [a.example.com]}\n"
                 "  b: {cert: certs/b.pem, key: certs/b.key, names: [b.example.com]}",
                 "certificates: [site]", "certificates: [a, b]",
                 "hosts: [www.example.com]", "hosts: [a.example.com, b.example.com]"),
    check=check_host_coverage,
))


# ------------------------------------------------------------------ LBC205
def check_one_certificate_per_server_port(model, ctx):
    """In passthrough each server port presents one certificate: it must cover every host reaching it."""
    groups: dict[tuple, list] = {}     # (service, server, port name) -> [(host, path, listener)]
    for l in model.listeners:
        if l.tls.mode != "passthrough" or not l.tls.certificates:
            continue
        cs = [model.certificate(c) for c in l.tls.certificates]
        if any(not c.names for c in cs):
            continue
        for r in l.routes:
            if r.service is None:      # a redirect (LBC619 refuses it on a passthrough listener)
                continue
            svc = model.service(r.service)
            targets = [r.server] if r.server else [s.name for s in svc.servers]
            for h, where in route_hosts(model, l, r):
                for srv in targets:
                    groups.setdefault((svc.name, srv, r.port_name), []).append((h, where, cs))
    reported = set()
    for (svc, srv, port), hosts in groups.items():
        candidates = {c.name: c for _h, _p, cs in hosts for c in cs}
        # hosts no certificate covers at all are LBC204's finding
        hosts = [(h, p) for h, p, cs in hosts if any(certs.covered_by(c.names, h) for c in cs)]
        if len(hosts) < 2 or any(all(certs.covered_by(c.names, h) for h, _ in hosts) for c in candidates.values()):
            continue
        best = max(candidates.values(), key=lambda c: sum(certs.covered_by(c.names, h) for h, _ in hosts))
        first = next((h, p) for h, p in hosts if certs.covered_by(best.names, h))
        for h, p in hosts:
            if not certs.covered_by(best.names, h) and p not in reported:
                reported.add(p)
                yield Finding(
                    p, f"host '{h}' reaches port '{port}' of server '{srv}' (service '{svc}') in passthrough, "
                    f"like '{first[0]}', but no single certificate covers both: a server port presents one "
                    "certificate",
                    hint="give each certificate its own server port (e.g. `ports: {a: 443, b: 444}` and "
                         "`port:` on each route), use one multi-domain or wildcard certificate, or terminate "
                         "TLS at the balancer, which selects certificates by SNI",
                    related=((first[1], f"'{first[0]}' reaches the same server port"),))


register(Rule(
    "LBC205", "one-certificate-per-server-port", E,
    "In passthrough, host names with different single-name certificates must reach different server ports.",
    "Route each certificate's host names to their own server port, or use one multi-domain/wildcard "
    "certificate, or terminate TLS at the balancer with SNI selection.",
    cite("004", "§3.2.2 Leverage Individual Certificates", "004", "§3.1.1.1 Example of Multihosting",
         "004", "§3.2.2.1 Option 2.B.2.1 - Servers Behind the Load Balancer"),
    why="In passthrough the servers perform the handshake, and the guide's servers pick their certificate "
        "by listening port, not by SNI. When only single-name certificates are available, every host name "
        "served by the same servers needs its own server socket holding that name's certificate (the guide "
        "uses 443 for one domain and 444 for the other). Two names with two certificates on one server port "
        "means one of them always gets the wrong certificate. In per-IP layouts (one VIP per name, routes "
        "without host names) lbc takes the names from the pinned servers' `direct_host` and from the "
        "listener's certificate.",
    bad=variant(NO_CERTS, "certificates:\n  a: {cert: certs/a.pem, names: [a.example.com]}\n"
                          "  b: {cert: certs/b.pem, names: [b.example.com]}\n",
                "{name: w1, address: 10.0.0.11, port: 8080}", "{name: w1, address: 10.0.0.11, port: 443}",
                "{name: w2, address: 10.0.0.12, port: 8080}", "{name: w2, address: 10.0.0.12, port: 443}",
                "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: source-ip}\n",
                "tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough, certificates: [a, b]}",
                "      - {hosts: [www.example.com], service: web}\n",
                "      - {hosts: [a.example.com], service: web}\n      - {hosts: [b.example.com], service: web}\n"),
    good=variant(NO_CERTS, "certificates:\n  a: {cert: certs/a.pem, names: [a.example.com]}\n"
                           "  b: {cert: certs/b.pem, names: [b.example.com]}\n",
                 "{name: w1, address: 10.0.0.11, port: 8080}", "{name: w1, address: 10.0.0.11, ports: {a: 443, b: 444}}",
                 "{name: w2, address: 10.0.0.12, port: 8080}", "{name: w2, address: 10.0.0.12, ports: {a: 443, b: 444}}",
                 "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: source-ip}\n",
                 "tls: {mode: terminate, certificates: [site]}", "tls: {mode: passthrough, certificates: [a, b]}",
                 "      - {hosts: [www.example.com], service: web}\n",
                 "      - {hosts: [a.example.com], service: web, port: a}\n"
                 "      - {hosts: [b.example.com], service: web, port: b}\n"),
    check=check_one_certificate_per_server_port,
))


# ------------------------------------------------------------------ LBC206
def check_upstream_tls(model, ctx):
    for svc in model.services:
        u = svc.upstream_tls
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if l.tls.mode == "bridge" and u is None:
                yield Finding(
                    tls_path(l), f"listener '{l.name}' bridges TLS to service '{svc.name}', which has no "
                    "`upstream_tls:` (how to verify the servers' certificates)",
                    hint=f"add `upstream_tls: {{ca: <CA bundle>, verify_name: <name in the servers' "
                         f"certificates>}}` to service '{svc.name}'",
                    related=((svc.path, f"service '{svc.name}'"),))
            elif l.tls.mode in ("terminate", "passthrough") and u is not None:
                what = ("sends plain HTTP to the servers" if l.tls.mode == "terminate"
                        else "forwards the client's own TLS stream")
                yield Finding(
                    u.path, f"service '{svc.name}' has `upstream_tls:`, but listener '{l.name}' uses TLS mode "
                    f"{l.tls.mode}, which {what}",
                    hint=f"use `tls: {{mode: bridge}}` on listener '{l.name}' to re-encrypt, or remove "
                         "`upstream_tls:`", key=True,
                    related=((tls_path(l), f"TLS mode {l.tls.mode} here"),))
        if u is not None and u.verify:
            missing = [k for k, v in (("ca", u.ca), ("verify_name or sni", u.verify_name or u.sni)) if not v]
            if missing:
                yield Finding(u.path, f"service '{svc.name}' verifies its servers' certificates but `upstream_tls:` "
                              f"gives no {' and no '.join(missing)}", key=True,
                              hint="give the CA bundle that signs the servers' certificates (`ca:`) and the name "
                                   "they carry (`verify_name:`, or `sni:`)")


BRIDGE = variant("tls: {mode: terminate, certificates: [site]}", "tls: {mode: bridge, certificates: [site]}")

register(Rule(
    "LBC206", "bridge-needs-upstream-tls", E,
    "Bridge mode needs `upstream_tls:` (a CA to verify the servers and the name to verify); terminate and "
    "passthrough have no upstream TLS of the balancer's own.",
    "For bridging give the service `upstream_tls: {ca: ..., verify_name: ...}`; otherwise remove "
    "`upstream_tls:` or switch the listener to bridge.",
    cite("000", "TLS/SSL Options"),
    why="Bridging ends the client's TLS at the balancer and opens a new TLS connection to the server, so "
        "the traffic is encrypted on both legs while the balancer can still insert a cookie. The second "
        "connection is only worth its cost if the balancer checks whom it talks to: a CA bundle to verify "
        "the servers' certificates and the name they must carry. In terminate mode the balancer talks plain "
        "HTTP to the servers, and in passthrough it never opens the stream, so an `upstream_tls:` there "
        "contradicts the listener.",
    bad=BRIDGE,
    good=BRIDGE.replace("    health: {tcp: true}\n", "    health: {tcp: true}\n"
                        "    upstream_tls: {ca: certs/ca.pem, verify_name: web.internal.example.com}\n"),
    check=check_upstream_tls,
))


# ------------------------------------------------------------------ LBC207
def check_weak_tls(model, ctx):
    for l in model.listeners:
        if l.decrypts and l.tls.min_version in ("1.0", "1.1"):
            yield Finding(tls_path(l, "min_version"),
                          f"listener '{l.name}' accepts TLS {l.tls.min_version}, which is deprecated (RFC 8996)")
    for svc in model.services:
        if svc.upstream_tls and not svc.upstream_tls.verify:
            yield Finding(svc.upstream_tls.path + ("verify",),
                          f"service '{svc.name}' does not verify its servers' certificates: anyone on the path "
                          "to the servers can impersonate them")


register(Rule(
    "LBC207", "weak-tls", W,
    "A TLS listener accepts versions below 1.2, or bridging does not verify the servers' certificates.",
    "Set `min_version: \"1.2\"` (the default) and keep `upstream_tls: {verify: true}` with a CA.",
    cite("000", "TLS/SSL Options") + "; RFC 8996",
    why="TLS 1.0 and 1.1 are deprecated and refused by current browsers. Bridging exists to keep the "
        "second leg encrypted and authenticated; without verification the balancer would send users' "
        "traffic to anyone who answers on the server's address.",
    bad=variant("tls: {mode: terminate, certificates: [site]}",
                'tls: {mode: terminate, certificates: [site], min_version: "1.0"}'),
    good=variant("tls: {mode: terminate, certificates: [site]}",
                 'tls: {mode: terminate, certificates: [site], min_version: "1.2"}'),
    check=check_weak_tls,
))


# ------------------------------------------------------------------ LBC208
def check_blueprint_bridging(model, ctx):
    if any(s.profile in HACLOUD and s.x509_client_auth for s in model.services):
        return  # single sign-on by certificate: both tiers pass TLS through (LBC201), never bridge
    for svc in model.services:
        if svc.profile not in HACLOUD:
            continue
        for l, _r in _per_listener(model.routes_to(svc.name)):
            if l.tls.mode == "terminate":
                yield Finding(tls_path(l), f"listener '{l.name}' terminates TLS for service '{svc.name}' "
                              f"(profile {svc.profile}); the HA blueprint bridges instead, keeping TLS to the "
                              "servers while the balancer still inserts the persistence cookie")


HACLOUD_TERMINATE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.20}
    certificates:
      site: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com", example.com]}
    services:
      sessions:
        profile: hacloud-session
        servers:
          - {name: ss1, address: 10.0.2.11, port: 7443}
          - {name: ss2, address: 10.0.2.12, port: 7443}
        health: {http: {path: /actuator/health}}
    listeners:
      - name: hacloud
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [site]}
        routes:
          - {hosts: [hacloud.example.com], service: sessions}
    """)

register(Rule(
    "LBC208", "hacloud-bridging", I,
    "Host Access for the Cloud behind TLS termination: the HA blueprint recommends bridging (end-to-end TLS "
    "with cookie persistence).",
    "Use `tls: {mode: bridge}` and give the service `upstream_tls:`.",
    cite("000", "TLS/SSL Options"),
    why="Termination works, but traffic between balancer and servers is then plain HTTP. The blueprint "
        "chooses bridging because it keeps TLS on both legs and still lets the balancer set the cookie the "
        "session servers and MSS need for persistence.",
    bad=HACLOUD_TERMINATE,
    good=HACLOUD_TERMINATE.replace("tls: {mode: terminate", "tls: {mode: bridge").replace(
        "    health: {http: {path: /actuator/health}}\n",
        "    health: {http: {path: /actuator/health}}\n"
        "    upstream_tls: {ca: certs/ca.pem, verify_name: sessions.internal.example.com}\n"),
    check=check_blueprint_bridging,
))


# ------------------------------------------------------------------ LBC209
def check_passthrough_protocol(model, ctx):
    for l in model.listeners:
        if l.tls.mode == "passthrough" and l.protocol == "http":
            yield Finding(l.path + ("protocol",), f"listener '{l.name}' passes TLS through but declares "
                          "`protocol: http`: the balancer cannot read HTTP inside a stream it does not decrypt")


register(Rule(
    "LBC209", "passthrough-is-l4", E,
    "A TLS passthrough listener is declared `protocol: http`, which it cannot be.",
    "Remove `protocol:` (passthrough is tcp), or decrypt with tls mode terminate or bridge to work at L7.",
    cite("004", "§3 HTTPS-Based Scenarios"),
    why="In passthrough the balancer forwards the encrypted stream; it can route by the SNI name of the "
        "handshake but never sees a request line, a header or a cookie. Declaring the listener HTTP asks for "
        "things (host routing by header, forwarded headers, cookies, WebSocket handling) that only a "
        "decrypting balancer can do.",
    bad=variant(NO_CERTS, "", "    tls: {mode: terminate, certificates: [site]}\n",
                "    protocol: http\n    tls: {mode: passthrough}\n",
                "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: source-ip}\n"),
    good=variant(NO_CERTS, "", "    tls: {mode: terminate, certificates: [site]}\n",
                 "    tls: {mode: passthrough}\n",
                 "    health: {tcp: true}\n", "    health: {tcp: true}\n    stickiness: {mode: source-ip}\n"),
    check=check_passthrough_protocol,
))


# ------------------------------------------------------------------ LBC210
def check_client_auth(model, ctx):
    for l in model.listeners:
        if l.tls.client_auth == "none":
            continue
        if not l.decrypts:
            yield Finding(tls_path(l, "client_auth"), f"listener '{l.name}' asks for client certificates "
                          f"(client_auth {l.tls.client_auth}) but uses TLS mode {l.tls.mode}: only a balancer "
                          "that completes the handshake can check them",
                          hint="use tls mode terminate or bridge, or, when the servers check client "
                               "certificates (X.509 login), passthrough with `x509_client_auth: true` on the "
                               "service and no client_auth on the listener")
        elif not l.tls.client_ca:
            yield Finding(tls_path(l, "client_auth"), f"listener '{l.name}' checks client certificates but "
                          "names no `client_ca:` to verify them against",
                          hint="add `client_ca: <PEM bundle of the CA that signs client certificates>`")


register(Rule(
    "LBC210", "client-auth-needs-ca", E,
    "Client certificates checked by the balancer need a decrypting TLS mode and a `client_ca:`.",
    "Use tls mode terminate or bridge and give `client_ca:`; for X.509 login at the servers use passthrough "
    "and `x509_client_auth: true` instead.",
    cite("000", "TLS/SSL with X.509 Single Sign-On"),
    why="`client_auth` makes the balancer itself ask for and verify the client's certificate, which it can "
        "only do when it completes the handshake, and only against a CA it knows. If the servers are the "
        "ones that must see the certificate, the balancer must stay out of the handshake (passthrough).",
    bad=variant("tls: {mode: terminate, certificates: [site]}",
                "tls: {mode: terminate, certificates: [site], client_auth: require}"),
    good=variant("tls: {mode: terminate, certificates: [site]}",
                 "tls: {mode: terminate, certificates: [site], client_auth: require, client_ca: certs/ca.pem}"),
    check=check_client_auth,
))


# ------------------------------------------------------------------ LBC211
def check_certificates_without_tls(model, ctx):
    for l in model.listeners:
        if l.tls.mode == "none" and l.tls.certificates:
            yield Finding(tls_path(l, "certificates"), f"listener '{l.name}' lists certificates but has TLS mode "
                          "none: they are not used and clients are served without TLS",
                          hint="set `mode: terminate` (or bridge, or passthrough), or remove the certificates")


register(Rule(
    "LBC211", "certificates-without-tls", W,
    "A listener lists certificates but its TLS mode is none.",
    "Set the TLS mode the certificates are for, or remove them.",
    cite("000", "TLS/SSL Options"),
    why="Certificates only take effect in a TLS mode. A listener that names them with mode none was almost "
        "certainly meant to terminate or bridge TLS, and as written serves plain text.",
    bad=variant("tls: {mode: terminate, certificates: [site]}", "tls: {mode: none, certificates: [site]}",
                "port: 443", "port: 80"),
    good=variant("tls: {mode: terminate, certificates: [site]}", "tls: {mode: terminate, certificates: [site]}",
                 "port: 443", "port: 443"),
    check=check_certificates_without_tls,
))


# ------------------------------------------------------------------ LBC212
def check_validity(model, ctx):
    for c in model.certificates:
        info = certs.read_certificate(model.local_file(c.cert))
        problem = certs.validity_problem(info) if info else None
        if problem:
            yield Finding(c.path + ("cert",), f"certificate '{c.name}' {problem}",
                          hint="renew the certificate before it expires; clients refuse expired certificates")


register(Rule(
    "LBC212", "certificate-validity", W,
    "A certificate has expired, is not yet valid, or expires within 30 days.",
    "Renew the certificate and install the new PEM file.",
    cite("004", "§3 HTTPS-Based Scenarios"),
    why="Every client checks the validity dates of the certificate it is shown and refuses the connection "
        "outside them. A warning 30 days ahead leaves time to renew; lbc reads the dates from the PEM file "
        "when it is readable.",
    bad=variant("site: {cert: certs/site.pem, key: certs/site.key,",
                "site: {cert: certs/expiring.pem, key: certs/expiring.key,"),
    good=BASE,
    check=check_validity,
))


# ------------------------------------------------------------------ LBC213
def check_key_match(model, ctx):
    for c in model.certificates:
        info = certs.read_certificate(model.local_file(c.cert))
        key = certs.read_private_key(model.local_file(c.key))
        if info and info.public_key and key.status == "ok" and key.public_key != info.public_key:
            yield Finding(c.path + ("key",), f"the key of certificate '{c.name}' does not belong to its certificate",
                          related=((c.path + ("cert",), "the certificate"),))


register(Rule(
    "LBC213", "key-mismatch", E,
    "A private key does not match its certificate.",
    "Name the key file that was generated with this certificate's request.",
    cite("004", "§3 HTTPS-Based Scenarios"),
    why="The balancer proves it owns the certificate with the matching private key. With another key every "
        "handshake fails; HAProxy and nginx refuse to start, Envoy rejects the listener.",
    bad=variant("key: certs/site.key", "key: certs/other.key"),
    good=BASE,
    check=check_key_match,
))


# ------------------------------------------------------------------ LBC214
def check_declared_names(model, ctx):
    for c in model.certificates:
        info = certs.read_certificate(model.local_file(c.cert))
        if not info:
            continue
        missing = [n for n in c.declared_names if not certs.covered_by(info.names, n)]
        if missing:
            yield Finding(c.path + ("names",), f"certificate '{c.name}' declares {', '.join(missing)}, which the "
                          f"file does not cover (it lists {', '.join(info.names) or 'no names'})",
                          hint="make `names:` match the certificate, since checks without the file rely on them")


register(Rule(
    "LBC214", "declared-names-differ", W,
    "A certificate's declared `names:` are not all covered by the names in its PEM file.",
    "Make `names:` match the certificate's SAN list.",
    cite("004", "§3.2.1 Leverage Multi-Domain SSL Certificates"),
    why="Where the PEM file is absent (CI without secrets) lbc checks host coverage against the declared "
        "names. If they claim more than the real certificate, those checks pass in CI and the deployment "
        "fails in production.",
    bad=variant('names: ["*.example.com", example.com]', 'names: ["*.example.com", example.org]'),
    good=BASE,
    check=check_declared_names,
))


# ------------------------------------------------------------------ LBC215
def check_pem(model, ctx):
    for c in model.certificates:
        cert, key = model.local_file(c.cert), model.local_file(c.key)
        if certs.exists(cert) and certs.read_certificate(cert) is None:
            yield Finding(c.path + ("cert",), f"certificate '{c.name}': {cert} holds no readable PEM certificate")
        if key and certs.exists(key):
            status = certs.read_private_key(key).status
            if status == "not-pem":
                yield Finding(c.path + ("key",), f"the key of certificate '{c.name}': {key} holds no readable "
                              "PEM private key")
            elif status == "encrypted":
                yield Finding(c.path + ("key",), f"the key of certificate '{c.name}' is encrypted with a passphrase",
                              hint="the balancer must load the key unattended: store it unencrypted, readable "
                                   "only by the balancer")
    cas = [(l.tls.client_ca, l.tls.path + ("client_ca",)) for l in model.listeners if l.tls.client_ca]
    cas += [(s.upstream_tls.ca, s.upstream_tls.path + ("ca",)) for s in model.services
            if s.upstream_tls and s.upstream_tls.ca]
    for path, where in cas:
        path = model.local_file(path)
        if certs.exists(path) and certs.count_certificates(path) == 0:
            yield Finding(where, f"{path} holds no readable PEM certificate")


register(Rule(
    "LBC215", "unreadable-pem", E,
    "A certificate, key or CA file exists but is not a readable PEM certificate or unencrypted private key.",
    "Convert the file to PEM (e.g. from DER or PKCS#12) and store the key without a passphrase.",
    cite("004", "§3 HTTPS-Based Scenarios"),
    why="Every target loads PEM files at start; a file in another format, or a key behind a passphrase, "
        "stops the balancer from starting. Finding it at validation time is cheaper.",
    bad=variant("cert: certs/site.pem, key: certs/site.key, names: [\"*.example.com\", example.com]",
                "cert: certs/broken.pem, key: certs/site.key, names: [\"*.example.com\", example.com]"),
    good=BASE,
    check=check_pem,
))


# ------------------------------------------------------------------ LBC216
def _tls_terms(l) -> dict:
    """What a client must be able to do to connect to a listener."""
    t = l.tls
    terms = {"TLS": "yes" if t.mode != "none" else "no"}
    if t.decrypts:
        terms["minimum TLS version"] = t.min_version
        terms["TLS profile"] = t.profile
        terms["client certificate"] = t.client_auth + (f" (CA {t.client_ca})" if t.client_ca else "")
    return terms


def check_create_control_consistency(model, ctx):
    for svc in model.services:
        pairs = model.routes_to(svc.name)
        create = [(l, r) for l, r in pairs if r.server is None]
        control = [(l, r) for l, r in pairs if r.server is not None]
        if not create or not control:
            continue
        creators = [c for c, _ in _per_listener(create)]
        for l, _r in _per_listener(control):
            if any(l.name == c.name for c in creators):
                continue
            got = _tls_terms(l)
            # terms one side leaves to the servers (passthrough) cannot be compared; a client that reached
            # any balanced endpoint on the same terms can control its session
            diffs = [(c, [k for k, v in _tls_terms(c).items() if k in got and v != got[k]]) for c in creators]
            if any(not d for _c, d in diffs):
                continue
            first, diff = diffs[0]
            want = _tls_terms(first)
            k = diff[0]
            yield Finding(
                tls_path(l, "mode"), f"service '{svc.name}': listener '{l.name}' (its per-server host names) and "
                f"listener '{first.name}' (its balanced host) differ in {k}: {got[k]} here, {want[k]} there; "
                "a client that can create a session may then fail to bind or control it, and loop between the two",
                hint=f"give listeners '{first.name}' and '{l.name}' the same TLS terms (mode, min_version, "
                     "profile, client_auth and client_ca)",
                related=((tls_path(first, "mode"), f"listener '{first.name}' carries the balanced host"),))


LS_TWO_LISTENERS = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.43}
      control: {address: 192.0.2.44}
    certificates:
      push: {cert: certs/site.pem, key: certs/site.key, names: ["*.example.com"]}
    services:
      push:
        profile: lightstreamer
        stickiness: {mode: application}
        servers:
          - {name: ls1, address: 10.0.6.11, ports: {create: 8081, control: 8080}, direct_host: push1.example.com}
          - {name: ls2, address: 10.0.6.12, ports: {create: 8081, control: 8080}, direct_host: push2.example.com}
        health: {http: {path: /lightstreamer/healthcheck}, port: create}
    listeners:
      - name: create
        vip: public
        port: 443
        tls: {mode: terminate, certificates: [push], min_version: "1.2"}
        buffering: false
        routes:
          - {hosts: [push.example.com], service: push, port: create}
      - name: control
        vip: control
        port: 443
        tls: {mode: terminate, certificates: [push], min_version: "1.2"}
        buffering: false
        routes:
          - {direct_hosts: true, service: push, port: control}
    """)

register(Rule(
    "LBC216", "create-control-tls-consistency", E,
    "The balanced (create) endpoint and the per-server (control) endpoints of one service ask different TLS "
    "terms of clients (TLS or not, minimum version, client certificates).",
    "Give the listeners that carry the balanced host and the direct hosts the same TLS mode, min_version, "
    "client_auth and client_ca.",
    cite("004", "§3.2 Leverage Application Stickiness - Options 2.B",
         "004", "§2.2 Leverage Application Stickiness - Options 1.B"),
    why="With application stickiness a client creates its session through the balanced host name and then "
        "binds and controls it through the server's own host name (Lightstreamer's control_link_address). "
        "If the second endpoint refuses what the first accepted (an older TLS version, a missing client "
        "certificate, plain HTTP after HTTPS), the session is created and every bind fails: clients loop "
        "between 'session created' and 'bind failed'. The certificates of each endpoint must also cover its "
        "own names, which LBC204 checks per listener.",
    bad=LS_TWO_LISTENERS.replace('min_version: "1.2"}\n    buffering: false\n    routes:\n      - {direct_hosts',
                                 'min_version: "1.3"}\n    buffering: false\n    routes:\n      - {direct_hosts'),
    good=LS_TWO_LISTENERS,
    check=check_create_control_consistency,
))
