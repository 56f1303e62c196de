"""One pipeline whose planning crashes does not hold back the other pipelines in its batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from harness import Harness

from promoter.runtime.intake import Item
from promoter.runtime.worker import Worker


class _CrashingShop(Worker):
    """A worker whose planning of pipeline `shop` crashes (a bug in one pipeline's path)."""

    async def process(
        self, name: str, items: Sequence[Item], arrived: datetime | None = None
    ) -> bool:
        if name == "shop":
            raise RuntimeError("planning bug")
        return await super().process(name, items, arrived)


async def test_a_crash_planning_one_pipeline_leaves_the_others_promoted(world: Harness) -> None:
    world.write_pipeline("shop")
    world.write_pipeline("cart", image="ghcr.io/acme/cart")
    await world.image("1.0.0", 1)  # shop's image and cart's, fetched in one batch
    await world.image("2.0.0", 2, "ghcr.io/acme/cart")
    worker = await world.start_worker()
    worker.__class__ = _CrashingShop
    await world.live("cart", "dev", "2.0.0")

    async def cart_acked() -> bool:
        return worker.processed == 1

    await world.until(cart_acked, "cart's event is acked while shop's waits for a retry")
    shop = await world.maybe_env("shop", "dev")
    assert shop is None or not shop["live"], "shop's crashed planning promoted something"
