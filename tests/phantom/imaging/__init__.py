"""Tests of cmr_search.phantom.imaging."""
