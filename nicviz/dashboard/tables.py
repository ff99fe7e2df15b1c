"""Summary tables the pages lay out, computed once per results-file version: class
summaries and BD tables with their bootstrap intervals (laid out by
:mod:`nicviz.analysis.tables`)."""

from __future__ import annotations

import streamlit as st

from nicviz.dashboard.widgets import load_results

__all__ = ["summary_table", "bd_classifier_tables", "bd_codec_table"]


@st.cache_data(show_spinner=False, max_entries=64)
def summary_table(path: str, mtime: float, task: str, codec: str | None = None):
    """:func:`~nicviz.analysis.classification_summary` of one classifier's rows of a
    results file (one codec's, when given), over the images measured at every quality of
    their codec, computed once per file version."""
    from nicviz.analysis import classification_summary
    from nicviz.results import whole_images

    df = load_results(path, mtime)
    df = whole_images(df[df["task"].astype(str) == task])  # a growing sweep: its finished images only
    return classification_summary(df if codec is None else df[df["codec"] == codec])


@st.cache_data(show_spinner=False, max_entries=8)
def bd_classifier_tables(path: str, mtime: float, anchor_task: str, points: float = 5.0):
    """Per codec: BD-accuracy of each other classifier against ``anchor_task`` and the
    accuracy won back where the anchor first loses ``points`` (cached per results file)."""
    import pandas as pd

    from nicviz.analysis.bd_task import bd_classifiers
    from nicviz.analysis.classify import accuracy_won_back

    df = load_results(path, mtime)
    df = df[df["task"].astype(str).str.startswith("classify") & df["label"].notna()]
    won = [accuracy_won_back(df, anchor_task, t, points).assign(task=t)
           for t in sorted(set(df["task"].astype(str)) - {anchor_task})]
    return bd_classifiers(df, anchor_task, n_boot=500), pd.concat(won, ignore_index=True) if won else pd.DataFrame()


@st.cache_data(show_spinner=False, max_entries=8)
def bd_codec_table(path: str, mtime: float, task: str, anchor: str, score: str, higher_is_better: bool = True):
    """BD of every codec against ``anchor`` on ``score`` for the rows of ``task`` (cached)."""
    from nicviz.analysis.bd_task import bd_codecs

    df = load_results(path, mtime)
    df = df[df["task"].astype(str) == task]
    if "label" in df and score == "correct":
        df = df[df["label"].notna()]
    return bd_codecs(df, anchor, score, higher_is_better, n_boot=500)
