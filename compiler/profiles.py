"""Application profiles: the defaults each deployment guide prescribes.

A profile's defaults apply only where the topology is silent; every value filled in is
recorded (Topology.defaults_applied) and shown by `lbc compile --explain-defaults`.
Keys are paths inside a service, values are what the guide prescribes, with the citation.
"""
from __future__ import annotations

PROFILES = ("generic", "flynet", "hacloud-session", "hacloud-mss", "verastream", "lightstreamer", "terminal-id")

# profile -> list of (path inside the service, value, citation)
PROFILE_DEFAULTS: dict[str, list[tuple[tuple, object, str]]] = {
    "generic": [],
    "flynet": [
        (("balance",), "round-robin", "001 Load Balancing Method"),
        (("stickiness", "mode"), "cookie", "001 Sticky Load Balancing"),
        (("health", "http", "path"), "/FVTerm/FVHealth.aspx", "001 Health Monitoring"),
        (("health", "http", "expect_body"), "ACTIVE", "001 Health Monitoring"),
    ],
    "hacloud-session": [
        (("balance",), "least-connections", "000 Using Load Balancers"),
        (("stickiness", "mode"), "cookie", "000 Session Persistence"),
    ],
    "hacloud-mss": [
        (("balance",), "least-connections", "000 Using Load Balancers"),
        (("stickiness", "mode"), "cookie", "000 Session Persistence"),
    ],
    "verastream": [
        (("balance",), "weighted-random", "002 Load Distribution"),
        (("stickiness", "mode"), "source-ip", "002 Load Distribution"),
    ],
    "lightstreamer": [
        (("stickiness", "mode"), "cookie", "004 §2.1.2 Cookie Based"),
    ],
    "terminal-id": [],
}


def profile_defaults(profile: str) -> list[tuple[tuple, object, str]]:
    return PROFILE_DEFAULTS.get(profile, [])
