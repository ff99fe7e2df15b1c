"""nicviz dashboard: ``streamlit run app.py``. Pages live in ``app_pages/`` and call ``nicviz``."""

import logging

import streamlit as st

st.set_page_config(page_title="nicviz", page_icon="\U0001F50D", layout="wide")  # an emoji: no font host needed

pages = [
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:", default=True),
    st.Page("app_pages/rate_distortion.py", title="Rate-distortion", icon=":material/show_chart:"),
    st.Page("app_pages/skin_lesions.py", title="Skin lesions", icon=":material/dermatology:"),
    st.Page("app_pages/plates.py", title="Licence plates", icon=":material/directions_car:"),
    st.Page("app_pages/run_sweep.py", title="Run a sweep", icon=":material/play_arrow:"),
]
try:
    st.navigation(pages).run()
except Exception as exc:  # a page's own bug: one line for the user, the traceback only in the server's log
    logging.getLogger("nicviz.dashboard").exception("a page failed")
    st.error(f"This page hit an internal error ({type(exc).__name__}); it is logged on the server. Change a choice "
             "or reload the page; what was computed before is kept.")
