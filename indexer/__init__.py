"""cmr-search: indexer package (scan, prepare, index; `embed_study` for query by example).

`embed_study` is imported on first use: it brings in the model (torch), which `cmr prepare` and the
prepare worker processes never need."""


def embed_study(folder, model):
    """A raw DICOM study folder -> (vectors, qa, studies found); see indexer.query_by_example."""
    from cmr_search.indexer.query_by_example import embed_study as _embed_study
    return _embed_study(folder, model)
