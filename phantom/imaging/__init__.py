"""phantom.imaging: MR image synthesis from the labelled heart and body. `render` renders every series
of a study (cine and LGE, SAX and long axis) by partial-volume sampling of each slice (`slab`), maps
tissue codes to signal with the sequence models (`signal`), adds the acquisition nuisance (`artifacts`:
coil bias, noise, misregistration, truncation) and hands the DICOM writer `series.RenderedSeries`.
"""
