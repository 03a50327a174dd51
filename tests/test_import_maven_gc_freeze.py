"""The Maven deal import freezes the garbage collector's older objects while it parses and writes."""

import gc

from pipelines.importers import maven_deals
from tests.test_import_maven import run_import


def test_objects_frozen_during_parse(org, monkeypatch):
    prefetch = maven_deals.DealRowParser.prefetch
    freeze_counts = []

    def prefetch_recording(self, batch):
        freeze_counts.append(gc.get_freeze_count())
        return prefetch(self, batch)

    monkeypatch.setattr(maven_deals.DealRowParser, "prefetch", prefetch_recording)

    result = run_import(org)

    assert result.counts["deals"].created == 6
    assert len(freeze_counts) == 1
    assert freeze_counts[0] > 0
    assert gc.get_freeze_count() == 0


def test_earlier_freeze_kept(org):
    gc.freeze()
    try:
        frozen_before = gc.get_freeze_count()

        run_import(org)

        # Frozen objects freed during the import leave the count, and none join it.
        frozen_after = gc.get_freeze_count()
        assert frozen_after > 0
        assert frozen_after <= frozen_before
    finally:
        gc.unfreeze()
