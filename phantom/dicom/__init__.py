"""phantom.dicom: writing a rendered study as classic MR Image Storage DICOM files. `writer` lays out
series and instances, numbers and times them and fills the header; `vendors` gives each study a
vendor's series naming and sequence-tag habits (with optional name noise); `encode` is the fast
byte-level Part 10 encoder (Explicit VR Little Endian, optionally RLE Lossless) the writer uses.
"""
