"""LBC106-LBC108: files the topology names, services nothing reaches, acknowledgements of no rule."""
from __future__ import annotations

import os

from .. import certs
from ..diagnostics import Severity
from . import REGISTRY, Finding, Rule, register
from .common import LBC_LANGUAGE, cite, y


def named_files(model):
    """(path as written, document path, what it is) for every file the topology names."""
    for c in model.certificates:
        yield c.cert, c.path + ("cert",), f"certificate '{c.name}'"
        if c.key:
            yield c.key, c.path + ("key",), f"the key of certificate '{c.name}'"
    for l in model.listeners:
        if l.tls.client_ca:
            yield l.tls.client_ca, l.tls.path + ("client_ca",), f"the client CA of listener '{l.name}'"
    for s in model.services:
        if s.upstream_tls and s.upstream_tls.ca:
            yield s.upstream_tls.ca, s.upstream_tls.path + ("ca",), f"the server CA of service '{s.name}'"


def check_files(model, ctx):
    strict = ctx.check_files
    for path, where, what in named_files(model):
        local = model.local_file(path)
        if not certs.exists(local):
            state = "is not a regular file" if os.path.lexists(local) else "does not exist"
            yield Finding(where, f"{what}: file {local} {state}",
                          severity=Severity.ERROR if strict else None)


register(Rule(
    "LBC106", "file-missing", Severity.WARNING,
    "A certificate, key or CA file named in the topology does not exist (an error with --check-files).",
    "Install the file, or, where the secrets are deployed separately, declare the certificate's `names:` "
    "and acknowledge with `ignore: {LBC106: <reason>}`; run `lbc validate --check-files` where the files "
    "must be present.",
    LBC_LANGUAGE + "; " + cite("000", "TLS/SSL Options"),
    why="Certificates and keys are secrets that many pipelines keep out of the repository, so a missing "
        "file is only a warning: CI can still check the topology, using the names the certificate "
        "declares. Where the files must be present (the machine that runs the balancer), --check-files "
        "makes it an error. When the file is there, lbc reads the names, validity and key from it instead.",
    bad=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        certificates:
          web: {cert: certs/missing.pem, names: [web.example.com]}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
        listeners:
          - name: web
            vip: public
            port: 443
            tls: {mode: terminate, certificates: [web]}
            routes:
              - {hosts: [web.example.com], service: web}
        """),
    good=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        certificates:
          web:
            cert: certs/missing.pem
            names: [web.example.com]
            ignore: {LBC106: the secrets pipeline installs the PEM files on the balancer}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
        listeners:
          - name: web
            vip: public
            port: 443
            tls: {mode: terminate, certificates: [web]}
            routes:
              - {hosts: [web.example.com], service: web}
        """),
    check=check_files,
))


def check_unrouted(model, ctx):
    routed = set(model.routed_services)
    for s in model.services:
        if s.name not in routed:
            yield Finding(s.path, f"no listener routes to service '{s.name}': it is never used", key=True)


register(Rule(
    "LBC107", "service-unrouted", Severity.WARNING,
    "A service that no listener routes to.",
    "Add a route to it, or remove the service.", LBC_LANGUAGE,
    why="A service no route names is not compiled into any target, so its servers, checks and stickiness "
        "do nothing; usually a route names the wrong service.",
    bad=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
          web-new:
            servers:
              - {name: n1, address: 10.0.0.21, port: 8080}
        listeners:
          - name: web
            vip: public
            port: 80
            routes:
              - {service: web}
        """),
    good=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
          web-new:
            servers:
              - {name: n1, address: 10.0.0.21, port: 8080}
        listeners:
          - name: web
            vip: public
            port: 80
            routes:
              - {hosts: [new.example.com], service: web-new}
              - {service: web}
        """),
    check=check_unrouted,
))


def _ignores(model):
    """(document path of the object, its ignore pairs) for every object that can carry `ignore:`."""
    yield (), model.ignore
    for c in model.certificates:
        yield c.path, c.ignore
    for s in model.services:
        yield s.path, s.ignore
        for srv in s.servers:
            yield srv.path, srv.ignore
    seen = set()
    for l in model.listeners:
        yield l.path, l.ignore
        for r in l.routes:
            if r.path not in seen:  # direct_hosts expands one route into several
                seen.add(r.path)
                yield r.path, r.ignore


def check_ignores(model, ctx):
    for path, pairs in _ignores(model):
        for rid, _reason in pairs:
            r = REGISTRY.get(rid)
            if r is None:
                yield Finding(path + ("ignore", rid), f"`ignore:` names {rid}, which is not a rule", key=True,
                              hint="`lbc explain` lists the rules; remove the entry or fix the ID")
            elif not r.acknowledgeable:
                yield Finding(path + ("ignore", rid), f"{rid} cannot be acknowledged: a topology that breaks it "
                              "has no usable model or output", key=True, hint="fix the finding instead")


register(Rule(
    "LBC108", "ignore-unknown-rule", Severity.WARNING,
    "An `ignore:` entry names a rule that does not exist or cannot be acknowledged.",
    "Name an existing rule ID (`lbc explain` lists them), or remove the entry.", LBC_LANGUAGE,
    why="An acknowledgement with a mistyped ID acknowledges nothing, so the finding it was meant for "
        "still fails the build with no clue why. Structural rules and target capability errors cannot be "
        "acknowledged at all: no configuration could be produced.",
    bad=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
            ignore: {LBC999: a rule that does not exist}
        listeners:
          - name: web
            vip: public
            port: 80
            routes:
              - {service: web}
        """),
    good=y("""
        lbc: 1
        vips:
          public: {address: 192.0.2.10}
        services:
          web:
            servers:
              - {name: w1, address: 10.0.0.11, port: 8080}
            ignore: {LBC401: "single server, watched by the platform's own monitoring"}
        listeners:
          - name: web
            vip: public
            port: 80
            routes:
              - {service: web}
        """),
    check=check_ignores,
))
