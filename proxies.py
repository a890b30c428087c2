"""Reverse proxies: whose ``X-Forwarded-*`` headers the app believes.

``TRUSTED_PROXIES`` = N makes the app take the client's address, scheme, host and port from
the last N proxies' ``X-Forwarded-*`` headers (werkzeug's ProxyFix).  Those headers are only
as good as the peer that sent them: a client that reaches the server directly can write its
own ``X-Forwarded-For`` and choose the address every per-address limit counts.  So
``TRUSTED_PROXY_ADDRESSES`` (comma-separated addresses or networks, e.g.
``10.0.0.5,10.0.1.0/24``; ``unix`` for a proxy on a Unix socket) lists the peers whose
headers are read; a request from any other peer is taken as it arrived.

Without ``TRUSTED_PROXY_ADDRESSES`` the headers are read from every peer, which is safe only
when nothing but the proxy can reach the server (bound to loopback or to a network only the
proxy is on); the app warns at start-up, since it cannot know that.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import ConfigError

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNIX = "unix"  # a Unix-socket peer: REMOTE_ADDR is empty


def parse_addresses(raw: Any) -> tuple[tuple[Network, ...], bool]:
    """``TRUSTED_PROXY_ADDRESSES`` as (networks, unix socket trusted); ConfigError names it."""
    items: Iterable[Any] = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    networks: list[Network] = []
    unix = False
    for item in (str(part).strip() for part in items):
        if not item:
            continue
        if item.lower() == UNIX:
            unix = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"TRUSTED_PROXY_ADDRESSES must be comma-separated addresses or networks "
                f"(e.g. 10.0.0.5,10.0.1.0/24) or 'unix', got {item!r}"
            ) from None
    if not networks and not unix:
        raise ConfigError("TRUSTED_PROXY_ADDRESSES is set but names no address")
    return tuple(networks), unix


def peer_is_trusted(remote_addr: str | None, networks: Iterable[Network], unix: bool) -> bool:
    """True when the connection's peer is one of the listed proxies."""
    if not remote_addr:
        return unix
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class TrustedProxyFix:
    """ProxyFix for requests whose peer is a listed proxy; other requests pass unchanged."""

    def __init__(self, app: Any, proxies: int, networks: tuple[Network, ...], unix: bool):
        self.app = app
        self.fixed = ProxyFix(app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies)
        self.networks = networks
        self.unix = unix

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if peer_is_trusted(environ.get("REMOTE_ADDR"), self.networks, self.unix):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    """Read X-Forwarded-* as TRUSTED_PROXIES and TRUSTED_PROXY_ADDRESSES say; warn when the
    setting trusts every peer."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    raw = app.config.get("TRUSTED_PROXY_ADDRESSES")
    if proxies <= 0:
        if raw:
            log.warning("TRUSTED_PROXY_ADDRESSES is ignored while TRUSTED_PROXIES is 0")
        return
    if not raw:
        log.warning(
            "TRUSTED_PROXIES=%d without TRUSTED_PROXY_ADDRESSES: any client that can reach "
            "this server directly chooses its own address with X-Forwarded-For and escapes "
            "every per-address limit. Set TRUSTED_PROXY_ADDRESSES to the proxy's addresses, "
            "or bind the server to an address only the proxy can reach.",
            proxies,
        )
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
        return
    networks, unix = parse_addresses(raw)
    if any(network.prefixlen == 0 for network in networks):
        log.warning(
            "TRUSTED_PROXY_ADDRESSES includes every address (%s): any client that can reach "
            "this server chooses its own address with X-Forwarded-For",
            ",".join(str(n) for n in networks if n.prefixlen == 0),
        )
    app.wsgi_app = TrustedProxyFix(app.wsgi_app, proxies, networks, unix)  # type: ignore[method-assign]
