"""Licence plates: OCR accuracy against bit rate, and plate-by-plate inspection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from nicviz.analysis.ocr import PLATE_SELECTIONS, ocr_baseline, ocr_summary, select_plates
from nicviz.analysis.tables import bd_score_table
from nicviz.dashboard.plates import demo_plate_folder, per_image_sweep, plate_gallery, read_plate
from nicviz.dashboard.tables import bd_codec_table, merged_rows
from nicviz.dashboard.widgets import (
    available_codecs,
    cached_evaluate,
    dataset_image,
    load_results,
    load_upload,
    quality_picker,
    results_meta,
    size_guard,
)
from nicviz.plots import curve_figure
from nicviz.results import dataset_folder, fitting_iterations, list_result_files, results_dir
from nicviz.tasks.ocr.plates import cer, diff_html, normalize, read_labels

LEGEND = ('Legend: <span style="background:#d33;color:#fff">&nbsp;X&nbsp;</span> a character read wrong or '
          'added, <span style="background:#d33;color:#fff">&nbsp;&nbsp;</span> a character missing.')

st.title("Licence plates")
st.caption("Can OCR (PP-OCRv6 via rapidocr) still read a compressed plate? Exact match against the label, "
           "character error rate (CER), and which plates compression made better or worse.")

files = list_result_files("ocr")
df = None
beside: tuple[tuple[str, float], ...] = ()
source: dict[str, str] = {}  # codec -> the results file its rows come from (for its stored bitstreams)
if files:
    labels = {str(p.relative_to(results_dir())): p for p in files}
    key = st.selectbox("Results file", [k for k in labels if not per_image_sweep(labels[k])]
                       + [k for k in labels if per_image_sweep(labels[k])], key="pl_file")
    path = labels[key]
    # sweeps of a per-image codec (the overfitted codec) on the same plates, drawn beside this file's codecs
    dataset = results_meta(path).get("dataset")
    others = [k for k in labels if k != key and per_image_sweep(labels[k])
              and results_meta(labels[k]).get("dataset") == dataset]
    if others and not per_image_sweep(path):
        # off by default: the study's figures over every plate come first; added, every codec is held to
        # the plates the growing sweep has finished
        chosen = st.multiselect("Compare with the overfitted codec on the plates its sweep has finished so far",
                                others, default=[], key="pl_beside")
        for k in chosen:  # a file that cannot be read is named and left out, never blamed on the main file
            try:
                load_results(str(labels[k]), labels[k].stat().st_mtime)
                beside += ((str(labels[k]), labels[k].stat().st_mtime),)
            except (ValueError, OSError) as exc:
                st.warning(f"{k} is left out: {str(exc).splitlines()[0].replace(str(results_dir()), 'results')}")
    try:
        df, everything, kept = merged_rows(str(path), path.stat().st_mtime, "ocr", beside)
    except (ValueError, OSError) as exc:
        st.error(f"{key}: {str(exc).splitlines()[0].replace(str(results_dir()), 'results')}")
        df = None
    if df is not None:
        own = set(load_results(str(path), path.stat().st_mtime)["codec"].astype(str))  # its own rows win
        for other, other_mtime in beside:
            for c in set(load_results(other, other_mtime)["codec"].astype(str)) - own:
                source.setdefault(c, other)
        source = {str(c): source.get(str(c), str(path)) for c in df["codec"].unique()}
        if beside and kept < everything:
            its = sorted({f"{n:,}" for n in df["codec_settings"].dropna().map(fitting_iterations) if n}) \
                if "codec_settings" in df else []
            st.caption(f"Every codec on the **{kept} of {everything} plates** the overfitted sweep has finished (a "
                       "seeded random sample), so all are held to the same plates"
                       + (f"; the overfitted codec fits {' / '.join(its)} iterations a plate." if its else "."))
else:
    st.info("No OCR results under results/ yet: run `nicviz plates FOLDER --out results/plates/mine.csv` or the "
            "'Run a sweep' page with task ocr. The 'Read a plate live' tab works without them.")

inspect_tab, live_tab, research_tab = st.tabs(["Inspect plates", "Read a plate live", "Research figures"])
with inspect_tab:
    if df is None or df.empty:
        st.caption("Plate-by-plate inspection needs an OCR results file (above); the live tab reads any plate.")
    else:
        st.caption("Each plate before and after compression, with what OCR reads in each: pick a codec, a "
                   "quality and which plates to show (those compression made OCR miss first).")
        folder = dataset_folder(results_meta(path))
        root = str(folder) if folder else None
        i1, i2, i3 = st.columns(3)
        codec = i1.selectbox("Codec", sorted(df["codec"].unique()), key="pl_codec")
        quality = i2.selectbox("Quality", sorted(df[df.codec == codec]["quality"].unique()), key="pl_quality")
        which = i3.selectbox("Show", PLATE_SELECTIONS, key="pl_which")
        sub = select_plates(df[(df.codec == codec) & (df.quality == quality)], which)
        st.markdown(f"{len(sub)} plate(s). {LEGEND}", unsafe_allow_html=True)
        if not sub.empty:
            plate_gallery(sub, root, codec, quality, source=source.get(str(codec)))
        st.download_button("Download these rows (CSV)", sub.to_csv(index=False).encode(), file_name="nicviz-plates.csv",
                           key="pl_csv")

with research_tab:
    if df is None or df.empty:
        st.caption("No OCR results file to draw yet (see the message above).")
    else:
        base = ocr_baseline(df)
        st.markdown(f"Uncompressed: **{base['plates']} plates**, exact **{100 * base['exact']:.1f} %** "
                    f"(O = 0: {100 * base['exact_o0']:.1f} %), CER **{base['cer']:.3f}**.")
        table = ocr_summary(df)
        lenient = st.toggle("Count the letter O and the digit 0 as the same character", value=False, key="pl_o0")
        acc = "exact_o0" if lenient else "exact"
        t = table.copy()
        t["accuracy (%)"] = 100 * t[acc]
        c1, c2 = st.columns(2)
        c1.plotly_chart(curve_figure(t, "accuracy (%)", "exact-match accuracy (%)"), key="pl_acc")
        c2.plotly_chart(curve_figure(t, "cer", "character error rate"), key="pl_cer")
        show = t[["codec", "quality", "bpp", "psnr", "accuracy (%)", "cer", "improved_exact", "worsened_exact",
                  "unchanged_exact", "improved_cer", "worsened_cer"]].copy()
        for c in ("improved_exact", "worsened_exact", "unchanged_exact", "improved_cer", "worsened_cer"):
            show[c] = (100 * show[c]).round(1)
        show = show.round({"bpp": 3, "psnr": 2, "accuracy (%)": 1, "cer": 3})
        st.dataframe(show.rename(columns={
            "bpp": "bits per pixel", "psnr": "PSNR (dB)", "accuracy (%)": "read exactly (%)",
            "cer": "character error rate", "improved_exact": "now read exactly (%)",
            "worsened_exact": "no longer read exactly (%)", "unchanged_exact": "same outcome (%)",
            "improved_cer": "fewer wrong characters (%)", "worsened_cer": "more wrong characters (%)"}), hide_index=True)
        st.caption("Per codec and quality: the share of plates (%) whose reading got better, worse or stayed the same "
                   "against the uncompressed image, by exact match and by the character error rate (wrong, missing "
                   "or extra characters per character of the plate).")
        if "jpeg" in set(df["codec"]) and df["codec"].nunique() > 1:
            with st.expander("BD-accuracy of each codec against JPEG"):
                with st.spinner("Bootstrapping the BD intervals..."):
                    bd_exact = bd_codec_table(str(path), path.stat().st_mtime, "ocr", "jpeg", "exact", beside=beside)
                    bd_cer = bd_codec_table(str(path), path.stat().st_mtime, "ocr", "jpeg", "cer", False, beside=beside)
                for title, b, scale, unit in (("Plates read exactly", bd_exact, 1, "points"),
                                              ("Character error rate", bd_cer, 100, "points of CER, negative: fewer errors")):
                    if b.empty:
                        continue
                    st.markdown(f"**{title}**")
                    st.dataframe(bd_score_table(b, "JPEG", unit, scale), hide_index=True)
                st.caption("Bjontegaard deltas on the task score: the mean difference from JPEG across the bit rates "
                           "both cover, and how many fewer (negative) or more bits a codec needs for JPEG's score "
                           "(n/a: the scores do not overlap); 95 % bootstrap intervals over plates.")

with live_tab:
    st.caption("Compress a generated plate or your own photo of one, and read it before and after.")
    source = st.radio("Plate", ["a generated plate", "my own plate photo"], horizontal=True, key="pl_source")
    d1, d2, d3 = st.columns(3)
    codecs = available_codecs()
    rgb, err, truth = None, None, None
    if source == "a generated plate":
        folder = Path(demo_plate_folder())
        labels_demo = read_labels(folder)
        plate = d1.selectbox("Generated plate", sorted(labels_demo), key="pl_demo_plate",
                             help="The last six are small, blurred or noisy: compression makes OCR fail on them first.")
        rgb, err = dataset_image(str(folder), plate)
        truth = labels_demo[plate]
    else:
        up = d1.file_uploader("Plate photo (a crop of the plate reads best)", key="pl_upload")
        typed = st.text_input("The plate's text, if you know it (scores both readings against it)", key="pl_truth")
        truth = normalize(typed) or None
        if up is not None:
            rgb, err = load_upload(up.getvalue(), up.name)
    dcodec = d2.selectbox("Codec", codecs, index=codecs.index("jpeg") if "jpeg" in codecs else 0, key="pl_demo_codec")
    dq = quality_picker(dcodec, "Quality", "pl_demo_quality", d3, default_index=0)
    if err:
        st.error(err)
    elif rgb is not None and (rgb := size_guard(rgb, [dcodec], "pl_downscale")) is not None:
        res, err = cached_evaluate(rgb, dcodec, dq)
        if err:
            st.error(err)
        else:
            ref_text, _ = read_plate(rgb)
            text, conf = read_plate(res[1])
            # without a known text, the reading of the original is what the compressed one is held to
            target = truth if truth is not None else ref_text
            if not target:
                st.warning("OCR finds no plate text in the original photo, so there is nothing to compare the "
                           "compressed reading with: try a tighter crop of the plate, or type the plate's text above.")
            a, b = st.columns(2)
            a.image(rgb, caption="original", width="stretch")
            b.image(res[1], caption=f"{dcodec} q{dq}: {res[0]['bpp']:.3f} bpp, PSNR {res[0]['psnr']:.1f} dB",
                    width="stretch")
            if truth is not None:
                a.markdown(f"read: {diff_html(truth, ref_text)} (CER {cer(ref_text, truth):.2f})", unsafe_allow_html=True)
            else:
                a.markdown(f"read: `{ref_text or '(nothing)'}`")
            if target:
                b.markdown(f"read: {diff_html(target, text)} (CER {cer(text, target):.2f}, confidence {conf:.2f})",
                           unsafe_allow_html=True)
            else:
                b.markdown(f"read: `{text or '(nothing)'}`")
            if truth is None:
                st.caption("No plate text given: the compressed reading is compared with the original's; "
                           "red marks where they differ.")
            st.markdown(LEGEND, unsafe_allow_html=True)
            st.dataframe(pd.DataFrame([{"label": truth or "(not given)", "original": ref_text, "compressed": text}]),
                         hide_index=True)
