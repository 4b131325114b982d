"""The HTTP gateway (``ipmirror serve``): path gateway, trustless gateway, IPNS records, delegated
routing. Handlers see only a :class:`~ipmirror.gateway.backend.Backend`, never the store."""
