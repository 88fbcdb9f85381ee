"""bench/real_measure.py's speed row: both runtimes timed on one real Sunnybrook cine, the segmenter left
on its default runtime afterwards, and the table prints it (skipped without ../shared)."""
from __future__ import annotations

import pytest

from bench.real_measure import SHARED, run_speed, table
from cmr_search.indexer.reference_sets import sunnybrook_studies
from cmr_search.model.segmentation import Segmenter

SUNNYBROOK = SHARED / "sunnybrook-cine"


@pytest.mark.skipif(not SUNNYBROOK.is_dir(), reason="../shared/data/sunnybrook-cine is not beside the project")
def test_speed_times_torch_and_the_default_runtime_on_a_real_cine():
    seg = Segmenter.untrained()
    sp = run_speed(seg, sunnybrook_studies(SUNNYBROOK)[0])
    assert sp["images"] >= 100 and sp["decode_s"] > 0
    assert sp["segment_s"] > 0 and sp["segment_torch_s"] > 0 and sp["runtime"] == "OnnxNet"
    assert "forward" not in seg.__dict__                       # back on the default, built anew when used
    line = table({"segmenter": {"model": "m", "fingerprint": "f", "trained": False}, "threads": 2, "speed": sp})
    assert "OnnxNet; torch" in line and "ratio" in line
