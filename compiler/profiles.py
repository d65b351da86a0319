"""Application profiles: the defaults each deployment guide prescribes.

A profile's defaults apply only where the topology is silent; every value filled in is
recorded (Topology.defaults_applied) and shown by `lbc compile --explain-defaults`.
Keys are paths inside a service, values are what the guide prescribes, with the citation.
The profile's rules (LBC301 stickiness, LBC402 Flynet health page, LBC5xx sizing, ...) are
switched on by the profile name in the rule modules.
"""
from __future__ import annotations

from typing import Optional

from .rules.common import cite

PROFILES = ("generic", "flynet", "hacloud-session", "hacloud-mss", "verastream", "lightstreamer", "terminal-id")

SUMMARIES = {
    "generic": "no application-specific defaults or rules",
    "flynet": 'Flynet terminal emulator servers ("Flynet Server Load Balancing")',
    "hacloud-session": 'Host Access for the Cloud session servers ("Planning for Deployment")',
    "hacloud-mss": 'Host Access for the Cloud Management and Security Server ("Planning for Deployment")',
    "verastream": "Verastream Host Integrator 7.x session servers of a domain (technical note 7021566)",
    "lightstreamer": 'Lightstreamer Server 7.1 cluster ("Clustering for Load Balancing and Fail Over")',
    "terminal-id": 'Host Access for the Cloud Terminal ID Manager, which has no HA ("Planning for Deployment")',
}

# profile -> list of (path inside the service, value, citation)
PROFILE_DEFAULTS: dict[str, list[tuple[tuple, object, str]]] = {
    "generic": [],
    "flynet": [
        (("balance",), "round-robin", cite("001", "Load Balance Algorithm")),
        (("stickiness", "mode"), "cookie", cite("001", "Sticky Load Balancing", "001", "Session Persistence")),
        (("health", "http", "path"), "/FVTerm/FVHealth.aspx", cite("001", "Health Monitor Configuration")),
        (("health", "http", "expect_body"), "ACTIVE", cite("001", "Health Monitor Configuration")),
    ],
    "hacloud-session": [
        (("balance",), "least-connections", cite("000", "Using Load Balancers")),
        (("stickiness", "mode"), "cookie", cite("000", "Using Load Balancers", "000", "TLS/SSL Options")),
    ],
    "hacloud-mss": [
        (("balance",), "least-connections", cite("000", "Using Load Balancers")),
        (("stickiness", "mode"), "cookie", cite("000", "Using Load Balancers", "000", "TLS/SSL Options")),
    ],
    "verastream": [
        (("balance",), "weighted-random", cite("002", "What Happens At Runtime")),
        # every session request is a fresh weighted draw; no affinity is asked for (LBC309)
        (("stickiness", "mode"), "none", cite("002", "What Happens At Runtime")),
        # the management server takes offline servers out by checking their status at intervals
        (("health", "tcp"), True, cite("002", "What Happens At Runtime")),
    ],
    "lightstreamer": [
        (("stickiness", "mode"), "cookie", cite("004", "§2.1.2 Option 1.A.2 - Cookie Based")),
    ],
    "terminal-id": [],
}

_CHECK_KINDS = ("http", "tcp")


def profile_defaults(profile: str, service: Optional[dict] = None) -> list[tuple[tuple, object, str]]:
    """The profile's defaults that apply to this service (raw topology data).

    A health-check default of one kind is dropped when the service chose the other kind:
    filling it in would contradict the topology.
    """
    defaults = PROFILE_DEFAULTS.get(profile)
    if not defaults:
        return []
    chosen = set((service or {}).get("health") or {}) & set(_CHECK_KINDS)
    return [(keys, value, citation) for keys, value, citation in defaults
            if not (keys[0] == "health" and chosen and keys[1] not in chosen)]
