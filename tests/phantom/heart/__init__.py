"""Tests of cmr_search.phantom.heart."""
