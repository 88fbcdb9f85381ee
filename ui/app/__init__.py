"""The cohort workbench: a Streamlit app over the search API (`cmr ui` starts it).

main.py is the Streamlit script (a thin router); screens/ hold one module per page, each a `render()`;
the helpers beside them (state, media, logic, upload, indexing) are plain functions that tests call.
"""
