"""What the prepare stage takes from a rendered compose file (no engine)."""

from __future__ import annotations

from stackmatrix.engine.prepare import Need, _needs_of
from stackmatrix.matrix.expand import Variant


def test_images_to_pull_and_tagged_builds_to_make() -> None:
    data = {
        "services": {
            "db": {"image": "postgres:17"},
            "app": {"build": {"context": "."}, "image": "shop/app:1"},
            "untagged": {"build": {"context": "."}},
            "proxy": {"image": "${REGISTRY:-docker.io}/nginx:1"},
        }
    }

    needs = _needs_of(Variant("v", {}), data)

    # An untagged build is named after its variant's project (nothing to share), and compose
    # interpolates an image with ${...} from its own environment: both are left to compose.
    assert needs == {
        "db": Need("postgres:17"),
        "app": Need("shop/app:1", build=("v", "app")),
    }
