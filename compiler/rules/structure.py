"""Structural rules: found by the loader (LBC00x), the schema check (LBC01x) and the model
builder (LBC101-LBC105). Registered here so that each ID has its explain page.

None of them can be acknowledged with `ignore:`: a file that breaks them has no usable model.
"""
from dataclasses import replace

from . import Rule, register
from .common import E, I, LBC_LANGUAGE, replace_in, y



# The smallest clean topology; most structural examples are this file with one mistake.
BASE = y("""
    lbc: 1
    vips:
      public: {address: 192.0.2.10}
    services:
      web:
        servers:
          - {name: w1, address: 10.0.0.11, port: 8080}
    listeners:
      - name: web
        vip: public
        port: 80
        routes:
          - {service: web}
    """)


def variant(old: str, new: str) -> str:
    return replace_in(BASE, old, new)


for _r in [
    Rule("LBC001", "file-unreadable", E, "The topology file is too large or not UTF-8 text.",
         "Keep topology files below the size limit (10 MiB by default, --max-bytes) and save them as UTF-8.",
         LBC_LANGUAGE,
         why="Topology files come from many editors and pipelines. Reading them as UTF-8 only, with a size cap, "
             "means a name never changes meaning between machines and a huge file cannot exhaust memory.",
         bad="# saved as Latin-1 (the é is one byte that UTF-8 does not accept)\n"
             + variant("lbc: 1\n", "lbc: 1\ndescription: café servers\n"),
         good="# saved as UTF-8\n" + variant("lbc: 1\n", "lbc: 1\ndescription: café servers\n")),
    Rule("LBC002", "yaml-syntax", E, "The file is not valid YAML, is empty, or holds more than one document.",
         "Fix the YAML syntax at the position shown.", LBC_LANGUAGE,
         why="Nothing can be checked in a file that does not parse. One topology per file keeps every "
             "diagnostic's position unambiguous.",
         bad=variant("- {service: web}", "- {service: web"),
         good=BASE),
    Rule("LBC003", "yaml-limits", E, "The YAML is nested too deeply or uses too many aliases (alias bomb).",
         "Write values out instead of nesting anchors and aliases.", LBC_LANGUAGE,
         why="A few hundred bytes of nested YAML aliases expand to gigabytes (the 'billion laughs' attack). "
             "A topology is a few levels deep and needs no such constructs, so lbc refuses them before "
             "expanding anything.",
         bad=variant("lbc: 1\n", "lbc: 1\n"
                     "description: &a [x, x, x, x, x, x, x, x, x]\n"
                     "x1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "x2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "x3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "x4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "x5: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"),
         good=BASE),
    Rule("LBC004", "duplicate-key", E, "A key appears twice in the same mapping.",
         "YAML keeps only the last value silently; remove one of the two keys.", LBC_LANGUAGE,
         why="Most YAML readers keep the last of two equal keys without a word, so the file says one thing "
             "to its reader and another to the machine.",
         bad=variant("    port: 80\n", "    port: 80\n    port: 8080\n"),
         good=BASE),
    Rule("LBC005", "include", E, "An included or environment file is missing, outside the topology's folder, "
         "included in a cycle or too deeply, not marked as a fragment, or defines a name another file defines.",
         "Include fragments (files starting with `lbc-fragment: 1`) by a relative path inside the main file's "
         "folder; write each object once and change it per environment with an overlay.", LBC_LANGUAGE,
         why="A topology split by owner must still mean one thing: a missing file would silently drop services, "
             "a name defined twice would leave which one wins to the order of the files, and a path leaving the "
             "folder (or a loop) would let a topology read files it does not own.",
         bad="include: [services.yaml]  # no such file beside the topology\n" + BASE,
         good=BASE),
    Rule("LBC006", "unresolved-placeholder", E, "A ${name} placeholder has no value, or a values file is malformed.",
         "Give the value with --values FILE, or as LBC_VAR_<name> with --values-env; write $${ for a literal '${'.",
         LBC_LANGUAGE,
         why="A placeholder left in place would reach a proxy's configuration as text ('${port}'), and a value "
             "silently taken as empty would change where traffic goes. An unresolved placeholder stops the run, "
             "at the line that holds it.",
         bad=variant("port: 8080}", "port: '${web_port}'}"),
         good=BASE),
    Rule("LBC007", "fragment-alone", I, "A file marked `lbc-fragment: 1` was checked on its own.",
         "Validate the main file that includes it; a fragment is not a whole topology.", LBC_LANGUAGE,
         why="Fragments (included files and environment overlays) lack what other files provide, so checking "
             "one alone would report false errors; it is checked as part of its topology instead. lbc says so, "
             "so that a hook or a wildcard that passes every YAML file does not fail on fragments.",
         bad="lbc-fragment: 1\nservices:\n  api:\n    servers:\n      - {name: a1, address: 10.0.0.21, port: 8080}\n",
         good=BASE),
    Rule("LBC010", "unknown-key", E, "A key that the topology language does not know (often a typo).",
         "Use a key the language defines; `lbc schema` lists them.", LBC_LANGUAGE,
         why="A misspelt key would otherwise be ignored and its setting silently lost (e.g. `stickness:` "
             "leaves a stateful application without stickiness).",
         bad=variant("    servers:", "    balence: least-connections\n    servers:"),
         good=variant("    servers:", "    balance: least-connections\n    servers:")),
    Rule("LBC011", "wrong-type", E, "A value has the wrong type (e.g. text where a number is expected).",
         "Give a value of the type the schema expects.", LBC_LANGUAGE,
         why="Each target needs numbers as numbers and flags as booleans; guessing a conversion would hide "
             "mistakes such as a quoted port.",
         bad=variant("port: 8080}", 'port: "8080"}'),
         good=BASE),
    Rule("LBC012", "missing-key", E, "A required key is missing.", "Add the key.", LBC_LANGUAGE,
         why="A server without an address, or a listener without a port, has no meaning lbc could compile.",
         bad=variant("{name: w1, address: 10.0.0.11, port: 8080}", "{name: w1, port: 8080}"),
         good=BASE),
    Rule("LBC013", "value-not-allowed", E, "A value is outside the allowed set, range or pattern.",
         "Use one of the allowed values.", LBC_LANGUAGE,
         why="Names, modes and numbers reach every target's configuration; only values every target can "
             "express safely are accepted, and the nearest allowed value is suggested.",
         bad=variant("    servers:", "    balance: round-robbin\n    servers:"),
         good=variant("    servers:", "    balance: round-robin\n    servers:")),
    Rule("LBC014", "bad-duration", E, "A duration is not a whole number above zero with a unit (ms, s, m, h, d), "
         "or is longer than 24 days.",
         "Write durations like 500ms, 5s, 30m, 1h; at most 24d.", LBC_LANGUAGE,
         why="A bare number is seconds in one proxy and milliseconds in another; a unit removes the doubt. "
             "HAProxy's timers end at 2^31-1 ms (about 24.8 days): a longer check interval or stick-table "
             "expiry makes `haproxy -c` fail, so lbc refuses it first.",
         bad=variant("    servers:", "    health: {tcp: true, interval: 5sec}\n    servers:"),
         good=variant("    servers:", "    health: {tcp: true, interval: 5s}\n    servers:")),
    Rule("LBC015", "language-version", E, "The file does not declare `lbc: 1`.",
         "Start the file with `lbc: 1`.", LBC_LANGUAGE,
         why="The version line lets a later lbc read old files correctly, and refuse files written for a "
             "newer language instead of misreading them.",
         bad=variant("lbc: 1", "lbc: 2"),
         good=BASE),
    Rule("LBC101", "unresolved-reference", E,
         "A reference names a VIP, certificate, service, server or port that does not exist.",
         "Name an object that is defined, or define it.", LBC_LANGUAGE,
         why="A listener routing to a service that does not exist would compile to a configuration that "
             "fails at start, or worse, at the first request.",
         bad=variant("- {service: web}", "- {service: wbe}"),
         good=BASE),
    Rule("LBC102", "duplicate-name", E, "Two objects of the same kind share a name.",
         "Give each listener, and each server of a service, its own name.", LBC_LANGUAGE,
         why="Names become identifiers in every target (backend, cluster, pool and member names) and in "
             "stickiness cookies; two equal names would merge or shadow each other.",
         bad=variant("      - {name: w1, address: 10.0.0.11, port: 8080}\n",
                     "      - {name: w1, address: 10.0.0.11, port: 8080}\n"
                     "      - {name: w1, address: 10.0.0.12, port: 8080}\n    health: {tcp: true}\n"),
         good=variant("      - {name: w1, address: 10.0.0.11, port: 8080}\n",
                      "      - {name: w1, address: 10.0.0.11, port: 8080}\n"
                      "      - {name: w2, address: 10.0.0.12, port: 8080}\n    health: {tcp: true}\n")),
    Rule("LBC103", "listener-conflict", E, "Two listeners bind the same VIP address and port.",
         "Use another port or VIP, or merge the listeners' routes into one listener.", LBC_LANGUAGE,
         why="Only one socket can own an address and port: the proxy would refuse to start, or one "
             "listener would silently never receive traffic.",
         bad=BASE + "  - name: web-again\n    vip: public\n    port: 80\n    routes:\n      - {service: web}\n",
         good=BASE + "  - name: web-alt\n    vip: public\n    port: 8080\n    routes:\n      - {service: web}\n"),
    Rule("LBC104", "bad-host", E, "A host name is not a valid DNS name, or is routed twice on one listener.",
         "Use RFC 1123 names; a wildcard only as the whole leftmost label (*.example.com); route each host "
         "once per listener.", LBC_LANGUAGE,
         why="Host names are matched against the Host header, SNI and certificate names. A name that is not "
             "valid DNS can never match, and a host routed twice leaves which route wins to each proxy's "
             "own ordering.",
         bad=variant("- {service: web}", "- {hosts: [web_1.example.com], service: web}"),
         good=variant("- {service: web}", "- {hosts: [web-1.example.com], service: web}")),
    Rule("LBC105", "bad-server", E, "A service has no servers, or an address or port is invalid.",
         "Give each service at least one server with a valid address and port.", LBC_LANGUAGE,
         why="A pool without servers, or a server on port 0 or 70000, cannot be expressed by any proxy.",
         bad=variant("port: 8080}", "port: 80800}"),
         good=BASE),
]:
    register(replace(_r, acknowledgeable=False))
