"""phantom.audit: the benchmark-honesty audit of a generated archive (`cmr synth audit DIR`).
`archive` runs the four checks (DICOM headers and pixel statistics should not give the class away,
the measured values should, report keywords should only as far as intended) and formats the table;
`features` extracts the header, intensity and keyword features; `stats` is the small numpy/scipy
statistics kit (logistic regression, AUC, stratified folds, bootstrap CI).
"""
