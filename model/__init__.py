"""cmr-search: model package (configs, towers, loss, training, checkpoints, the published CMR-CLIP).

    from cmr_search.model import create_model, list_models
    m = create_model("cmr-tiny")                       # or create_model("cmr-clip-b16", checkpoint=...)
    v = m.encode_video(frames, view_ids, mask)          # (B, F, H, W), (B, F), (B, F) -> (B, embed_dim)
    t = m.encode_text(["LV dilated"])                   # -> (N, embed_dim)

Names are imported lazily so that `import model.preprocess` (the clip contract, numpy and scipy only) stays light.
"""
from importlib import import_module

_EXPORTS = {"create_model": "factory", "list_models": "factory", "load_checkpoint": "checkpoint",
            "save_checkpoint": "checkpoint", "embed_clips": "embed", "embed_texts": "embed"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")
