"""Tests of cmr_search.phantom.dicom."""
