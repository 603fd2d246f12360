"""--allow / --deny: which client addresses may connect (tcp_wrappers' job, built in).

One rule, the most specific network wins: of the --allow and --deny networks that
contain the address, the longest prefix decides, and at equal length --deny wins. An
address that no network contains is refused when any --allow is given (the allows are
then the list of who may connect), accepted otherwise. IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``), in rules and clients alike, are IPv4.

Imported only when a rule is configured (``ipaddress`` is a few milliseconds of every
inetd no-wait start)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """An address or CIDR (``192.0.2.0/24``, ``2001:db8::/32``, ``::ffff:10.0.0.0/104``);
    host bits are ignored (``10.1.2.3/8`` is ``10.0.0.0/8``). ValueError if neither."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an address or ADDRESS/PREFIX, got {text!r}") from None
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
    return net


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class AccessRules:
    """The --allow and --deny networks; ``permits(host)`` at accept."""

    def __init__(self, allow: Iterable[Network] = (), deny: Iterable[Network] = ()) -> None:
        self.allow = tuple(allow)
        self.deny = tuple(deny)

    def permits(self, host: str) -> bool:
        addr = _address(host)
        if addr is None:  # not an IP address (a Unix socket in tests): no rule applies
            return not self.allow
        best, verdict = -1, not self.allow
        for net in self.allow:
            if addr in net and net.prefixlen > best:
                best, verdict = net.prefixlen, True
        for net in self.deny:
            if addr in net and net.prefixlen >= best:
                best, verdict = net.prefixlen, False
        return verdict
