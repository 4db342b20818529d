"""The tiny run the tests start from, written once: the config's own dotted overrides, small enough
that a run trains in seconds on two cores (320 synthetic images, 64 of them held out for validation so
that the other 256 are one batch; a 5-layer net of width 4; no progress bar). A test adds what it is
about after it; OmegaConf applies a dotted list in order, so a later key wins."""

TINY = (
    "data=synthetic",
    "data.synthetic_train_size=320",
    "data.val_size=64",
    "data.synthetic_test_size=64",
    "data.batch_size=256",
    "data.num_workers=0",
    "model.depth=5",
    "model.width=4",
    "trainer.enable_progress_bar=false",
)


def tiny(*overrides: str) -> list[str]:
    """The tiny run with `overrides` after it."""
    return [*TINY, *overrides]
