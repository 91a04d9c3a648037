"""Code the tests share: small services, fake peers and clients, a remote cluster node."""
