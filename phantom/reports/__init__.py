"""phantom.reports: the report impression of each study. `report` grades the measured values into a
finding vector and writes a numbered impression (hedging, label noise, held-out wording for the test
split); `parts` holds its building blocks (grades, printed numbers, phrase builders); `lexicon` maps
concepts to surface forms and slots to template skeletons, each tagged by split.
"""
