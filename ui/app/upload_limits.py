"""The limits of a query-by-example upload (ui/app/upload.py; docs/failure.md, "A hostile upload").

Kept apart from upload.py so that `cmr ui`, which hands MAX_UPLOAD_MB to Streamlit, starts without
importing pydicom. Each limit refused is one line for the user, naming the limit.
"""
MAX_UPLOAD_MB = 200               # the zip as uploaded; `cmr ui` also sets server.maxUploadSize to this
MAX_UNPACKED_MB = 1_000           # all its files unpacked, as their headers say (and as written: never more)
MAX_MEMBERS = 20_000              # files in the zip
MAX_RATIO = 100                   # unpacked / packed, of each file and of the whole zip ...
RATIO_FLOOR_MB = 1                # ... when it unpacks to more than this (small files compress as they like)
MAX_HEADER_MB = 8                 # a DICOM file's header (all before Pixel Data): parsed element by element
META_KB = 64                      # its file meta group (and no deflated data sets: they inflate at once)
MAX_SIDE = 1_024                  # Rows and Columns of each image, read from the DICOM header
MAX_MEGAPIXELS = 128              # million pixels (Rows x Columns x frames), all images of the upload together
MAX_SECONDS = 180                 # the whole upload: unpack, header check, read, measure, embed
MAX_CONCURRENT = 2                # uploads processed at once in the workbench (one per session)
CHUNK = 1 << 20                   # bytes copied at a time when unpacking
