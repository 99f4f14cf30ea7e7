"""Which addresses a tenant-supplied URL may reach: public ones, and the networks the operator allows.

Everything else is inside someone's network — the server itself, the LAN, the cloud's metadata service — and a
URL a tenant typed must not reach it. IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged by
the IPv4 address they lead to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services hand out credentials; some sit outside the link-local range (Alibaba, older OCI).
METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "192.0.0.192",
    )
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address is refused: `kind` labels the metric, `reason` completes "… is <reason>"."""

    kind: str
    reason: str


def _carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> Refusal | None:
    """None for a public address; otherwise the class of non-public address it is."""
    carried = _carried_ipv4(address)
    if carried is not None:
        return classify(carried)
    if address in METADATA:
        return Refusal("metadata", "a cloud metadata address")
    if address.is_unspecified:
        return Refusal("unspecified", "the unspecified address")
    if address.is_loopback:
        return Refusal("loopback", "a loopback address")
    if address.is_link_local:
        return Refusal("link-local", "a link-local address")
    if address.is_multicast:
        return Refusal("multicast", "a multicast address")
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED:
        return Refusal("shared", "a carrier-grade NAT address")
    if address.is_reserved:
        return Refusal("reserved", "a reserved address")
    if address.is_private:
        return Refusal("private", "a private address")
    if not address.is_global:
        return Refusal("reserved", "a reserved address")
    return None


class AddressPolicy:
    """Public addresses, plus the operator's `outbound.allow_networks`."""

    def __init__(self, allow_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.allowed = list(allow_networks)

    def refusal(self, host: str) -> Refusal | None:
        """Why this IP address (text, as a resolver returns it) may not be reached; None if it may."""
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone index
        candidates = [address]
        carried = _carried_ipv4(address)
        if carried is not None:
            candidates.append(carried)
        if any(candidate in network for candidate in candidates for network in self.allowed):
            return None
        return classify(address)
