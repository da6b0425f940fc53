"""The outbound HTTP client (h11 + ssl, CONNECT proxies, pooling), shared by providers
and platforms: `urls` (URLs and the proxy environment), `connection` (one connection and
its response), `client` (the pool)."""

from __future__ import annotations


class HttpClientError(Exception):
    """The request failed; str(error) says why, in words a user can act on."""
