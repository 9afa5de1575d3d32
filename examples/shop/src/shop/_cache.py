"""A read-through cache of products in Redis (or anything that speaks its protocol)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from shop._models import Product

if TYPE_CHECKING:
    import redis


class ProductCache:
    """Products by SKU, stored as JSON under `<namespace>:product:<sku>` with a TTL.

    Only products that exist are cached; the catalog invalidates an entry whenever
    it changes the product.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, ttl_seconds: int = 300) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._client = client
        self.namespace = namespace
        self.ttl_seconds = ttl_seconds
        self.hits = 0
        self.misses = 0

    def key(self, sku: str) -> str:
        """The Redis key of a product."""
        return f"{self.namespace}:product:{sku}"

    def get(self, sku: str) -> Product | None:
        """The cached product, or None on a miss."""
        raw = self._client.get(self.key(sku))
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        fields = json.loads(raw)
        return Product(
            sku=str(fields["sku"]),
            name=str(fields["name"]),
            price_cents=int(fields["price_cents"]),
            active=bool(fields["active"]),
        )

    def put(self, product: Product) -> None:
        """Cache `product` for the configured TTL."""
        self._client.set(self.key(product.sku), json.dumps(asdict(product)), ex=self.ttl_seconds)

    def invalidate(self, sku: str) -> None:
        """Forget the cached product, if any."""
        self._client.delete(self.key(sku))
