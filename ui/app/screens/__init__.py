"""One module per page (not "pages/": Streamlit would turn that folder into its own navigation); each has `render()`."""
