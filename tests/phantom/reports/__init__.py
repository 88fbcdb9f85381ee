"""Tests of cmr_search.phantom.reports."""
