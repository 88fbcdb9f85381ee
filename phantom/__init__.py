"""phantom: a synthetic cardiac MRI archive generator (SYNTHETIC data, no real patient).

An analytic 3-D beating heart with disease phenotypes, rendered as cine and LGE MR images, written as
DICOM studies with report impressions and ground truth. Entry points:
`cmr_search.phantom.generate.generate_study`, `cmr_search.phantom.generate.generate_archive`, and `cmr synth`
on the command line. What was built and how honest it is as a benchmark: docs/phantom.md.
Imports only numpy, scipy and pydicom.

Layout: `cases` (the latent records and their samplers, class rules), `heart` (the 3-D heart, body,
geometry and reader-like measurement), `imaging` (MR signal, partial volume, artifacts, rendering),
`dicom` (the DICOM writer), `reports` (report impressions), `audit` (the benchmark-honesty audit); on
top `generate` (the stages in order), `preview` (contact sheets), `profiles` (study sizes) and
`randomness` (the shared seeded random streams).
"""
