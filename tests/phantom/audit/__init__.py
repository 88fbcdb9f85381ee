"""Tests of cmr_search.phantom.audit."""
