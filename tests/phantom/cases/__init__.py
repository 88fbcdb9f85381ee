"""Tests of cmr_search.phantom.cases."""
