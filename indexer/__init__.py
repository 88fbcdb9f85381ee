"""cmr-search: indexer package (scan, prepare, index; `embed_study` for query by example)."""


def embed_study(folder, model):
    """A raw DICOM study folder -> (vectors, qa, studies found); see indexer.example."""
    from .example import embed_study as _embed_study
    return _embed_study(folder, model)
