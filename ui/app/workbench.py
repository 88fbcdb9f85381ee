"""The workbench as `cmr ui` serves it: Streamlit's st.App running main.py behind the Host allow-list.

`streamlit run ui/app/workbench.py` finds the App below and serves it (uvicorn, Streamlit's own routes and
middleware); HostGuard (host_guard.py) runs first on every request, so a page served under another host
name (DNS rebinding) gets 403 before Streamlit sees it. The allowed names come from $CMR_UI_ALLOW_HOSTS,
which `cmr ui` sets from --allow-host and --host.
"""
from pathlib import Path

from starlette.middleware import Middleware
from streamlit.starlette import App

from cmr_search.ui.app.host_guard import HostGuard, allowed_hosts

MAIN = Path(__file__).resolve().with_name("main.py")

app = App(MAIN, middleware=[Middleware(HostGuard, allowed=allowed_hosts())])
