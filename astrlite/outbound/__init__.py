"""The outbound HTTP client (h11 + ssl, CONNECT proxies, pooling), shared by providers
and platforms."""
