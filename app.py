"""nicviz dashboard: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="nicviz", layout="wide")

pages = [
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", default=True),
]
st.navigation(pages).run()
