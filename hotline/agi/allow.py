"""Which hosts may open a FastAGI session.

FastAGI has no authentication: whoever can connect can report a call answered by a
seat (``agent_connect``: the call pops on that agent's screen, who may then see the
number), end a call or change a transfer's outcome. Only the PBX may talk to it.

``[agi] allowed_hosts`` lists addresses, networks (``10.1.0.0/16``) or host names
(resolved once at start). Empty (the default): loopback plus the configured Asterisk
Manager host ``[calls] ami_host``, i.e. the PBX this node already talks to. A
connection from any other address is closed at once, before a byte is read, counted
in ``hotline_agi_refused_total`` and logged (at most once per ``log_interval``
seconds, with how many were refused since).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter

log = logging.getLogger("hotline.agi")

REFUSED = Counter("hotline_agi_refused_total", "FastAGI connections refused: the peer is not an allowed host")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone id is not part of it
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
    return address


def _networks(entry: str, resolve: Callable[[str], Iterable[str]]) -> list[Network]:
    entry = entry.strip()
    if not entry:
        return []
    try:
        return [ipaddress.ip_network(entry, strict=False)]
    except ValueError:
        pass
    try:
        addresses = [a for a in (_address(x) for x in resolve(entry)) if a is not None]
    except OSError as exc:
        log.warning("FastAGI allow-list: host %r cannot be resolved (%s); not allowed", entry, exc)
        return []
    return [ipaddress.ip_network(a) for a in addresses]


def resolve_host(name: str) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)})


@dataclass(slots=True)
class AllowList:
    """The networks a FastAGI peer must be in, and the refusal's accounting."""

    networks: tuple[Network, ...]
    log_interval: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    refused: int = 0
    _unlogged: int = field(default=0, repr=False)
    _logged_at: float | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, allowed_hosts: Iterable[str], ami_host: str = "",
        *, resolve: Callable[[str], Iterable[str]] = resolve_host,
    ) -> AllowList:
        """``allowed_hosts`` when given, else loopback and ``ami_host``."""
        entries = [h for h in allowed_hosts if h.strip()]
        networks: list[Network] = []
        if entries:
            for entry in entries:
                networks += _networks(entry, resolve)
        else:
            networks += LOOPBACK
            if ami_host:
                networks += _networks(ami_host, resolve)
        return cls(tuple(dict.fromkeys(networks)))

    def allows(self, peer: str) -> bool:
        address = _address(peer)
        return address is not None and any(address in network for network in self.networks)

    def refuse(self, peer: str) -> None:
        """Account for a refused connection: the metric always, the log at most once per
        ``log_interval`` (a scan or a flood must not flood the log)."""
        self.refused += 1
        REFUSED.inc()
        now = self.clock()
        if self._logged_at is not None and now - self._logged_at < self.log_interval:
            self._unlogged += 1
            return
        since = f" ({self._unlogged} more refused since the last report)" if self._unlogged else ""
        log.warning(
            "FastAGI: connection from %s refused: not in the allowed hosts %s ([agi] allowed_hosts)%s",
            peer, ", ".join(str(n) for n in self.networks) or "(none)", since,
        )
        self._logged_at, self._unlogged = now, 0
