"""Everything of nicviz that imports Streamlit: cached helpers and widgets for the pages
in ``app_pages/`` (which stay thin). The library, the CLI and the sweeps never import it."""
