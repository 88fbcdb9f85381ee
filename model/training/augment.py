"""Text augmentation for contrastive training: sentence dropout and order shuffling of an impression.

    augment_impression("Severe LV dilation. EF 25%. No LGE.", random.Random(0))
    -> e.g. "EF 25%. Severe LV dilation."

Report impressions list findings as sentences whose order carries little meaning; training on random
subsets and orders teaches the text tower's head that every sentence stands on its own, so that short
queries ("amyloid LGE pattern") land near whole reports. One sentence is always kept.
`pooled_augment` draws from a few fixed variants per impression instead, so a frozen text tower's
feature cache keeps the cost of augmentation near zero.
"""
from __future__ import annotations

import random
import re

SENTENCE_END = re.compile(r"(?<=[.;!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def augment_impression(text: str, rng: random.Random, drop: float = 0.15, shuffle: float = 0.5) -> str:
    """Drop each sentence with probability `drop` (keeping at least one), then shuffle the order with
    probability `shuffle`. Text without sentence breaks comes back unchanged."""
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return text
    kept = [s for s in sentences if rng.random() >= drop] or [rng.choice(sentences)]
    if rng.random() < shuffle:
        rng.shuffle(kept)
    return " ".join(kept)


def pooled_augment(text: str, rng: random.Random, drop: float = 0.15, variants: int = 4) -> str:
    """One of `variants` fixed augmentations of `text`, or `text` itself (each with equal chance).
    The variants are fixed by the text and their number, not by the step, so a frozen text tower, which
    caches its features per string, encodes each impression at most `variants + 1` times over a whole
    run: sentence dropout at the cost of no augmentation (the CPU recipe)."""
    v = rng.randrange(variants + 1)
    return text if v == 0 else augment_impression(text, random.Random(f"{v}\0{text}"), drop)
