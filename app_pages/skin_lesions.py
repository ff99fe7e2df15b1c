"""Skin lesions: does the diagnosis survive compression? The clinician's check of one
lesion image first (diagnosis before and after, in words; where the classifier looks),
then the study's evidence in sentences, then the research tables."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nicviz.analysis import confusion, per_class_recall
from nicviz.analysis.classify import class_outcomes, most_informative
from nicviz.analysis.tables import bd_classifier_table, bd_score_table, won_back_table
from nicviz.analysis.wording import plain_summary
from nicviz.dashboard.lesions import classifier_name, lesion_check, study_evidence
from nicviz.dashboard.tables import bd_classifier_tables, bd_codec_table, summary_table
from nicviz.dashboard.widgets import (
    result_frames,
    results_meta,
    side_by_side,
)
from nicviz.plots import classifiers_figure, curve_figure
from nicviz.results import dataset_folder

#: the summary's columns in words a clinician reads
PLAIN_COLUMNS = {"bpp": "bits per pixel", "accuracy_ref": "accuracy, originals (%)",
                 "accuracy": "accuracy, compressed (%)", "drop": "drop (points)", "drop_lo": "drop, 95 % CI from",
                 "drop_hi": "drop, 95 % CI to", "mcnemar_p": "McNemar p", "flip_rate": "diagnoses changed (%)",
                 "macro_f1": "macro-F1", "kappa": "Cohen's kappa", "confidence_change": "confidence change (points)"}

def captioned(table: pd.DataFrame, caption: str) -> None:
    """A table with its caption (nothing when it is empty)."""
    if not table.empty:
        st.dataframe(table, hide_index=True)
        st.caption(caption)


st.title("Skin lesions")
st.caption("Does a lesion keep its diagnosis after compression? A 9-class dermoscopy classifier (EfficientNet-Lite0 "
           "fine-tuned by nicviz on ISIC) on the original and the compressed image. A research demonstration, "
           "not a medical device.")

frames = {k: v for k, v in result_frames("classify").items()
          if v[1]["task"].astype(str).str.startswith("classify").any() and v[1]["label"].notna().any()}

check, research_tab = st.tabs(["Check a lesion image", "Research tables"])
with check:
    chosen = lesion_check(frames)
    st.subheader("What the study found")
    study_evidence(frames, chosen["codec"], chosen["bpp"], chosen["task"], chosen["dataset"])

with research_tab:
    if not frames:
        st.info("No labelled classification results on this server: run `nicviz sweep isic-test --task classify "
                "--out results/isic/mine.csv`.")
    else:
        key = st.selectbox("Results file", list(frames), key="sk_file")
        path, all_df = frames[key]
        meta = results_meta(path)
        if meta.get("partial"):  # a per-image codec's sweep, committed part way
            st.caption(f"A sweep still growing: {len(meta.get('images_finished', []))} images finished so far "
                       f"({meta.get('rows')} of {meta.get('planned_rows')} planned rows); the tables use those images.")
        all_df = all_df[all_df["task"].astype(str).str.startswith("classify")]
        tasks = sorted(all_df["task"].astype(str).unique(), key=lambda t: (t != "classify", t))
        task = tasks[0]
        if len(tasks) > 1:
            task = st.radio("Classifier", tasks, format_func=classifier_name, horizontal=True, key="sk_task",
                            help="standard: trained on original images. Compression-trained (all codecs): shown "
                                 "each training image beside a copy compressed by a random codec at a random "
                                 "quality (JPEG, WebP, AVIF, JPEG 2000, the two neural minis) and taught to give "
                                 "both the same diagnosis, while keeping the standard model's answers on the "
                                 "originals. Without AVIF: trained the same way with the same codecs less AVIF, "
                                 "with JPEG XL and HEIF instead, to test a codec it never saw.")
        df = all_df[all_df["task"].astype(str) == task]
        summary = summary_table(str(path), path.stat().st_mtime, task)
        c1, c2 = st.columns(2)
        c1.plotly_chart(curve_figure(summary, "drop", "accuracy drop (points, 95 % CI)", "drop_lo", "drop_hi"),
                        key="sk_drop")
        c2.plotly_chart(curve_figure(summary, "accuracy", "top-1 accuracy (%)"), key="sk_acc")
        shown = summary[["codec", "quality", "bpp", "accuracy_ref", "accuracy", "drop", "drop_lo", "drop_hi",
                         "mcnemar_p", "flip_rate", "macro_f1", "kappa", "confidence_change"]].copy()
        shown[["flip_rate", "confidence_change"]] *= 100
        shown = shown.round({"bpp": 3, "accuracy_ref": 1, "accuracy": 1, "drop": 1, "drop_lo": 1, "drop_hi": 1,
                             "mcnemar_p": 3, "flip_rate": 1, "macro_f1": 3, "kappa": 3, "confidence_change": 1})
        st.dataframe(shown.rename(columns=PLAIN_COLUMNS), hide_index=True)
        st.caption("Drop: accuracy on the originals minus accuracy after compression, in points, with its exact 95 % "
                   "interval (it excludes 0 exactly when McNemar's test finds the change significant, p < 0.05). "
                   "Macro-F1 and kappa: agreement with the true diagnoses over all classes (1 = perfect).")
        if "drop" in summary and "jpeg" in set(summary["codec"]) and summary["codec"].nunique() > 1:
            with st.expander("BD-accuracy of each codec against JPEG"):
                with st.spinner("Bootstrapping the BD intervals..."):
                    bdc = bd_codec_table(str(path), path.stat().st_mtime, task, "jpeg", "correct")
                if not bdc.empty:
                    st.dataframe(bd_score_table(bdc, "JPEG", "points of accuracy"), hide_index=True)
                    st.caption("Mean accuracy gain over JPEG across the rates both cover, and the bits each codec "
                               "needs for JPEG's accuracy (negative: fewer); 95 % bootstrap intervals over images.")

        labelled_codecs = sorted(summary["codec"].unique())
        if len(tasks) > 1 and "drop" in summary:
            st.subheader("Accuracy won back by compression training")
            mtime = path.stat().st_mtime
            w1, w2 = st.columns([1, 2])
            wcodec = w1.selectbox("Codec", labelled_codecs, key="sk_wcodec",
                                  index=labelled_codecs.index("jpeg") if "jpeg" in labelled_codecs else 0)
            curves = pd.concat([summary_table(str(path), mtime, t, wcodec).assign(classifier=t) for t in tasks],
                               ignore_index=True)
            curves = curves.rename(columns={"accuracy_lo": "acc_lo", "accuracy_hi": "acc_hi"})
            st.plotly_chart(classifiers_figure(curves, {t: classifier_name(t) for t in tasks}), key="sk_wfig")
            st.caption("Top-1 accuracy on the compressed images, each with its exact 95 % interval (band); dotted: "
                       "each classifier on the original images.")
            with st.spinner("Bootstrapping the BD intervals..."):
                bd, won = bd_classifier_tables(str(path), mtime, tasks[0])
            names = {t: classifier_name(t) for t in tasks}
            captioned(won_back_table(won, names) if not won.empty else won,
                      "At the highest bit rate where the standard classifier loses more than 5 points, per "
                      "codec: the accuracy the compression-trained one wins back on the same compressed images, "
                      "and what each classifier loses against its own accuracy on the original images (exact "
                      "paired intervals; a won-back interval above 0 is significant at p < 0.05).")
            captioned(bd_classifier_table(bd, names) if not bd.empty else bd,
                      "BD-accuracy: the mean accuracy gain over the standard classifier across the bit rates "
                      "both curves cover (as BD-PSNR does for quality); bits at equal accuracy: how many "
                      "fewer (negative) or more bits the same accuracy needs (n/a: the accuracies do not "
                      "overlap). 95 % bootstrap intervals over images.")

        st.subheader("What does a bit rate do to diagnoses?")
        s1, s2 = st.columns(2)
        # open on the most informative case: JPEG at the highest rate that loses more than 5 points
        first_codec, first_q = most_informative(summary)
        codec_names = sorted(summary["codec"].unique())
        codec = s1.selectbox("Codec", codec_names, index=codec_names.index(first_codec), key="sk_codec")
        rows = summary[summary.codec == codec].sort_values("bpp")
        labels = [f"{r.bpp:.2f} bits per pixel (quality {r.quality:g})" for r in rows.itertuples()]
        qs = list(rows["quality"])
        pick = s2.selectbox("Bit rate", labels, index=qs.index(first_q) if first_q in qs else 0, key="sk_rate")
        r = rows.iloc[labels.index(pick)]
        chosen = df[(df.codec == codec) & (df.quality == r["quality"])]
        st.markdown(plain_summary(r, chosen))
        outcomes = class_outcomes(chosen)
        if not outcomes.empty:
            st.dataframe(outcomes.drop(columns="malignant").rename(columns={
                "recognised_ref": "recognised (original)", "recognised": "recognised (compressed)",
                "called_instead": "most often called instead", "called_instead_n": "times"}), hide_index=True)

        with st.expander("Per-class recall and confusion matrix at this bit rate"):
            recall = pd.DataFrame({"original": per_class_recall(chosen, "pred_ref"),
                                   "compressed": per_class_recall(chosen, "pred")}).round(3)
            st.dataframe(recall)
            st.caption("Confusion matrix of the compressed images (rows: true class, columns: predicted).")
            st.dataframe(confusion(chosen, "pred"))

        st.subheader("Per image")
        folder = dataset_folder(results_meta(path))
        root = str(folder) if folder else None
        sub = df[(df.codec == codec) & (df.quality == r["quality"])]
        only_changed = st.toggle("Only images whose diagnosis changed", value=True, key="sk_changed")
        if only_changed:
            sub = sub[sub["pred"].astype(str) != sub["pred_ref"].astype(str)]
        st.write(f"{len(sub)} image(s)")
        if len(sub):
            image = st.selectbox("Image", list(sub["image"]), key="sk_image")
            row = sub[sub.image == image].iloc[0]
            a, b = side_by_side(root, image, codec, r["quality"], "lesion images")
            changed = str(row["pred"]) != str(row["pred_ref"])
            a.markdown(f"true: **{row['label']}**  \npredicted: **{row['pred_ref']}** ({100 * row['confidence_ref']:.0f} %)")
            b.markdown(f"true: **{row['label']}**  \npredicted: **{row['pred']}** ({100 * row['confidence']:.0f} %)")
            if changed:
                st.warning(f"Diagnosis changed by compression: {row['pred_ref']} -> {row['pred']}")
