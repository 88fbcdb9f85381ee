"""cmr-search: search package."""
