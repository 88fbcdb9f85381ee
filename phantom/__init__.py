"""phantom: a synthetic cardiac MRI archive generator (SYNTHETIC data, no real patient).

An analytic 3-D beating heart with disease phenotypes, rendered as cine and LGE MR images, written as
DICOM studies with report impressions and ground truth. Entry points: `phantom.generate.generate_study`,
`phantom.generate.generate_archive`, and `cmr synth` on the command line. Design: ../shared/docs/phantom.md.
Imports only numpy, scipy and pydicom.
"""
