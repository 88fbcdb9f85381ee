"""cmr-search: indexer package."""
