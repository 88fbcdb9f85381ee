"""cmr-search: ui package."""
