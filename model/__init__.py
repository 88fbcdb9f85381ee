"""cmr-search: model package."""
