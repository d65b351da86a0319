"""The access-list order and its one-lookup form: `AccessList.table` (longest prefix wins, what nginx's
geo and Envoy's IP matcher implement) decides every address exactly as the language's order does
(deny first, then the allow list), for random, overlapping lists of both families."""
from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from lbc.build import parse_network
from lbc.model import AccessList, NetIndex

from strategies import client_network


# networks inside 10.0.0.0/8 with a few distinct high bits: they nest and overlap often, the case
# the table's construction is about (random networks of the whole space almost never nest)
NESTED = st.builds(lambda hi, lo, plen: str(ipaddress.ip_network(((10 << 24) | (hi << 20) | lo, plen), strict=False)),
                   st.integers(0, 3), st.integers(0, (1 << 20) - 1), st.integers(8, 32))
NETWORKS = st.lists(st.one_of(NESTED, NESTED, client_network()), max_size=8)


def _normalised(texts: list[str]) -> tuple[str, ...]:
    nets = [parse_network(t) for t in texts]
    return tuple(dict.fromkeys(n for n, problem in nets if n and not problem))


def _by_order(a: AccessList, ip) -> bool:
    if any(ip in ipaddress.ip_network(n) for n in a.deny):
        return False
    return not a.allow or any(ip in ipaddress.ip_network(n) for n in a.allow)


def _by_table(a: AccessList, ip) -> bool:
    best = None
    for n, ok in a.table:
        net = ipaddress.ip_network(n)
        if ip in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, ok)
    return a.default_allows if best is None else best[1]


@settings(max_examples=300, deadline=None)
@given(NETWORKS, NETWORKS, st.data())
def test_table_decides_like_the_order(allow, deny, data):
    a = AccessList(_normalised(allow), _normalised(deny))
    probes = [ipaddress.ip_network(n).network_address for n in a.allow + a.deny]
    probes += [ipaddress.ip_address(data.draw(st.integers(0, 2 ** 32 - 1))) for _ in range(4)]
    probes += [ipaddress.ip_network(n)[-1] for n in a.allow + a.deny]     # the last address of each
    for ip in probes:
        assert _by_table(a, ip) == _by_order(a, ip), (a, ip)


def test_net_index_finds_the_covering_network():
    idx = NetIndex(["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "0.0.0.0/0"])
    assert idx.covering("10.1.2.0/24") == "10.1.0.0/16"
    assert idx.covering("10.1.0.0/16") == "10.1.0.0/16"
    assert idx.covering("10.1.0.0/16", strict=True) == "10.0.0.0/8"
    assert idx.covering("192.0.2.1/32") == "0.0.0.0/0"
    assert idx.covering("2001:db8:5::/48") == "2001:db8::/32"
    assert idx.covering("2001:db9::/32") is None
    assert NetIndex([]).covering("10.0.0.0/8") is None


def test_parse_network():
    assert parse_network("192.0.2.7") == ("192.0.2.7/32", None)
    assert parse_network("2001:DB8::1") == ("2001:db8::1/128", None)
    assert parse_network("10.1.2.3/8") == ("10.0.0.0/8", "has host bits set: the network is 10.0.0.0/8")
    assert parse_network("10.0.0.256/32")[1] == "is not an IP network (CIDR) or address"
    assert parse_network("::ffff:10.0.0.0/104")[1] == "is an IPv4 network in IPv6 form: write it as IPv4"
