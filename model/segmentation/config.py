"""Segmenter configs: model/configs/seg-*.json -> SegConfig (named configs, one small factory)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CheckpointError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Output classes follow the ACDC masks the segmenter is scored against: papillary muscles and
# trabeculations belong to the LV cavity; everything that is not one of the three structures is 0.
LABELS = {0: "background", 1: "rv_cavity", 2: "lv_myocardium", 3: "lv_cavity"}


@dataclass
class SegConfig:
    name: str                                   # config name (file stem)
    channels: list[int]                         # U-Net widths, one per level (first = full resolution)
    classes: int = 4                            # output classes (LABELS)
    pixel_mm: float = 2.0                       # every input is resampled to square pixels of this size
    norm_percentiles: list[float] = field(default_factory=lambda: [1.0, 99.5])   # intensity -> 0..1
    tta: int = 1                                # views averaged at inference: 1 none, 2 + left-right flip,
                                                # 4 the rot90s, 8 the rot90s of both (training sees them all)
    description: str = ""                       # one line for humans

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def seg_config_from_dict(d: dict) -> SegConfig:
    known = set(SegConfig.__dataclass_fields__)
    unknown = sorted(set(d) - known)
    if unknown:
        raise CheckpointError(f"segmenter config has unknown fields {unknown}; known: {sorted(known)}")
    return SegConfig(**d)


def load_seg_config(name_or_path: str | Path) -> SegConfig:
    """A config by name (model/configs/<name>.json) or by path to a JSON file."""
    p = Path(name_or_path)
    if not p.suffix:
        p = CONFIGS / f"{name_or_path}.json"
    if not p.exists():
        names = sorted(q.stem for q in CONFIGS.glob("seg-*.json"))
        raise CheckpointError(f"no segmenter config {str(name_or_path)!r}; choose one of {names}")
    return seg_config_from_dict(json.loads(p.read_text()))
