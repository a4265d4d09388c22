"""Downloads reach public addresses only (server-side request forgery).

An importer's URL is typed by a merchant, and what it answers is imported (and partly shown
back). Without a guard, ``http://127.0.0.1:6379/``, ``http://169.254.169.254/`` (cloud
metadata) or a partner's private network would be fetched from inside the server. So every
download goes through a session whose connections resolve the host name once, check every
address it resolves to, and connect to a checked address: a name that resolves to a public
address when checked and to 127.0.0.1 when connecting (DNS rebinding) gains nothing, since
there is no second lookup. TLS still uses the host name (SNI, certificate verification).
Redirects go through the same connections, so each hop is checked. Proxies from the
environment are not used: a proxy would make the connection the guard sees the proxy's.

Refused: loopback, private, link-local, unique-local, multicast, unspecified, reserved and
other non-public addresses, and the cloud metadata addresses, with their IPv4-mapped (and
6to4, NAT64, IPv4-compatible) IPv6 forms. The operator lets a partner's private network
through with ``IMPORT_ALLOWED_NETWORKS`` (comma-separated CIDRs).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import requests
from flask import current_app, has_app_context
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from impexmod.importing import defaults

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "IMPORT_ALLOWED_NETWORKS"
ENV = "IMPEXMOD_IMPORT_ALLOWED_NETWORKS"
MAX_REDIRECTS = 10

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
UNSPECIFIED = (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class BlockedAddress(Exception):
    """A download that would reach an internal address; the message says which and why."""

    def __init__(self, message: str, host: str | None = None):
        super().__init__(message)
        self.host = host  # the host refused (another than the URL's: a redirect's)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return str(value)


def allowed_networks(value=None) -> tuple[Network, ...]:
    """The operator's allow-list (``IMPORT_ALLOWED_NETWORKS``), or BlockedAddress if bad."""
    if value is None and has_app_context():
        # Read as it is, not through defaults.setting: a JSON list from the environment is fine.
        value = current_app.config.get(SETTING)
    if value is None:
        value = defaults.IMPORT_ALLOWED_NETWORKS
    networks = []
    for item in _text(value).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise BlockedAddress(
                f"{ENV}: {item[:60]!r} is not a network (write CIDRs such as 10.1.2.0/24, "
                f"comma-separated)"
            ) from None
    return tuple(networks)


def _embedded(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, IPv4-compatible)."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in NAT64) or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_blocked(ip: Address) -> str | None:
    """What kind of internal address ``ip`` is ("a loopback address"), or None if public."""
    inner = _embedded(ip)
    if inner is not None:
        reason = why_blocked(inner)
        return f"the IPv6 form of {inner}, {reason}" if reason else None
    if ip in METADATA:
        return "a cloud metadata address"
    if any(ip in net for net in UNSPECIFIED) or ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 6 and ip in UNIQUE_LOCAL:
        return "a unique-local address"
    # Before "private": Python counts 240.0.0.0/4 and 255.255.255.255 among the private ones.
    if ip.is_reserved or (ip.version == 6 and ip in SITE_LOCAL):
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a non-public address"
    return None


def check_address(ip: Address | str, host: str, allowed: Iterable[Network]) -> None:
    """Raise BlockedAddress unless ``ip`` is public or in an allowed network."""
    ip = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
    forms = [ip] + ([_embedded(ip)] if _embedded(ip) is not None else [])
    if any(form in net for form in forms for net in allowed if form.version == net.version):
        return
    reason = why_blocked(ip)
    if reason is None:
        return
    try:
        literal = ipaddress.ip_address(host.strip("[]")) == ip
    except ValueError:
        literal = False
    said = f"{host} is {reason}" if literal else f"{host} resolves to {ip}, {reason}"
    raise BlockedAddress(
        f"{said}: impexmod does not fetch from internal addresses (see {ENV})", host.strip("[]")
    )


def resolve(host: str, port: int, allowed: Iterable[Network]) -> list[tuple]:
    """Every (family, sockaddr) ``host`` resolves to, each checked; BlockedAddress if any is
    internal (socket.gaierror if it resolves to nothing)."""
    allowed = tuple(allowed)
    found = socket.getaddrinfo(
        host.strip("[]"), port, connection.allowed_gai_family(), socket.SOCK_STREAM
    )
    # All of them, not only the first: the one connected to may be any.
    for _family, _type, _proto, _name, sockaddr in found:
        check_address(sockaddr[0], host, allowed)
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in found]


def check_url(url: str, allowed: Iterable[Network] | None = None) -> None:
    """Refuse early (BlockedAddress) an http(s) URL whose host is internal; a host that does
    not resolve now passes (the download will say so), and the connection is checked again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    allowed = allowed_networks() if allowed is None else allowed
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # a bad port: the download refuses it with its own message
    try:
        resolve(parts.hostname, port, allowed)
    except (socket.gaierror, UnicodeError):
        return


class _Guarded:
    """Connection mixin: resolve once, check every address, connect to a checked one."""

    def __init__(self, *args, allowed: tuple[Network, ...] = (), **kwargs):
        self.allowed = allowed
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        # Replaces urllib3's, which resolves the name again inside create_connection.
        try:
            addresses = resolve(self._dns_host, self.port, self.allowed)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for _family, sockaddr in addresses:
            try:
                # An address literal: create_connection does no lookup of its own.
                return connection.create_connection(
                    (sockaddr[0], self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    """An HTTP connection to checked addresses only."""


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    """An HTTPS connection to checked addresses only (SNI and certificate use the name)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection (redirect hops included) is checked."""

    def __init__(self, allowed: tuple[Network, ...], **kwargs):
        self.allowed = allowed
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        """The pool manager, making guarded pools (``allowed`` reaches each connection)."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_HTTPPool, allowed=self.allowed),
            "https": functools.partial(_HTTPSPool, allowed=self.allowed),
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        """Refused: through a proxy, the address checked would be the proxy's."""
        raise BlockedAddress("downloads do not go through a proxy")


def session(allowed: Iterable[Network] | None = None) -> requests.Session:
    """A requests session that only reaches public addresses (and the allowed networks)."""
    allowed = allowed_networks() if allowed is None else tuple(allowed)
    guarded = requests.Session()
    # No proxy, .netrc or environment settings: direct connections, each one checked.
    guarded.trust_env = False
    # trust_env also read these two: an operator's CA bundle is still honoured.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    guarded.verify = bundle or True
    guarded.max_redirects = MAX_REDIRECTS
    adapter = GuardedAdapter(allowed)
    guarded.mount("http://", adapter)
    guarded.mount("https://", adapter)
    return guarded
