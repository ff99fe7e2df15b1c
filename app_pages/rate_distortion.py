"""Rate-distortion: precomputed Kodak curves, CompressAI's published curves, BD-rate."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nicviz.analysis import bd_rate
from nicviz.dashboard.widgets import load_results, missing_columns, result_frames
from nicviz.metrics import METRIC_LABELS, METRICS, curve_metrics, get_metric
from nicviz.plots import rd_figure
from nicviz.reference import load_references
from nicviz.results import fitting_effort, list_result_files, results_dir, whole_images

st.title("Rate-distortion")

files = list_result_files("rd")
if not files:
    st.warning("No rate-distortion results yet. Run a sweep on the 'Run a sweep' page or with `nicviz sweep`.")
    st.stop()
NEEDED = ("dataset", "image", "codec", "quality", "bpp", "psnr")
labels, left_out = {}, []
for p in files:  # every file is checked once: one that cannot be drawn is named with its reason, never offered
    key = str(p.relative_to(results_dir()))
    why = missing_columns(str(p), p.stat().st_mtime, NEEDED)
    if why:
        left_out.append(f"{key} ({why})")
    else:
        labels[key] = p
if left_out:
    st.caption("Left out, as they cannot be drawn: " + "; ".join(left_out) + ".")
if not labels:
    st.warning("No results file here can be drawn. Run a sweep on the 'Run a sweep' page or with `nicviz sweep`.")
    st.stop()
# the shipped Kodak curves and this session's own sweeps (never another session's newest file)
mine = [f"user/{n}.csv" for n in sorted(st.session_state.get("rs_written", set()))]
mine = [k for k in mine if k in labels]
newest_user = max(mine, key=lambda k: labels[k].stat().st_mtime, default=None)
default = [k for k in labels if k.startswith(("kodak/", "overfitted/"))] + mine
default = default or list(labels)[:1]
chosen = st.multiselect("Results files", list(labels), default=default, key="rd_files")
if not chosen:
    st.info("Choose at least one results file.")
    st.stop()
frames = []
source = {}  # codec -> the results file its curve comes from
for key in chosen:
    try:
        frame = load_results(str(labels[key]), labels[key].stat().st_mtime)
    except (ValueError, OSError) as exc:
        st.error(f"{key}: {str(exc).splitlines()[0].replace(str(results_dir()), 'results')}")
        continue
    missing = [c for c in ("dataset", "image", "codec", "quality", "bpp", "psnr") if c not in frame.columns]
    if missing:  # a file of another kind, or one whose sweep failed: left out, never a traceback
        st.warning(f"{key} is left out: it has no {', '.join(missing)} column(s).")
        continue
    if "codec_settings" in frame.columns:  # a codec that fits each image: its effort is part of its name
        effort = frame["codec_settings"].map(fitting_effort)
        frame = frame.assign(codec=[f"{c} ({e})" if e else c for c, e in zip(frame["codec"], effort, strict=True)])
    if key.startswith("user/"):  # a user's sweep is a curve of its own, never averaged into the shipped ones
        frame = frame.assign(codec=frame["codec"].astype(str) + f" ({key.removeprefix('user/').removesuffix('.csv')})")
    frames.append(frame)
    for c in frame["codec"].astype(str).unique():
        source.setdefault(c, key)
if not frames:
    st.stop()
df = pd.concat(frames, ignore_index=True)
datasets = sorted(df["dataset"].astype(str).unique())
ds = datasets[0]
if len(datasets) > 1:
    newest = load_results(str(labels[newest_user]), labels[newest_user].stat().st_mtime) \
        if newest_user in chosen else None
    # the session's newest sweep, else Kodak (the study's RD set; the overfitted ISIC sweep comes first by name)
    first = str(newest["dataset"].iloc[0]) if newest is not None and len(newest) else \
        "kodak" if "kodak" in datasets else datasets[0]
    ds = st.selectbox("Dataset", datasets, index=datasets.index(first) if first in datasets else 0, key="rd_dataset")
    df = df[df["dataset"] == ds]

# a curve averages the same images at every quality: images a growing sweep has not finished are left out
df = whole_images(df, ("codec",))
counts = df.groupby("codec")["image"].nunique()
fewer = counts[counts < counts.max()]
if len(fewer):
    st.caption("Curves over fewer images than the others (a sweep still growing, or a subset): "
               + "; ".join(f"{c}: {n} of {counts.max()} images" for c, n in fewer.items())
               + ". Filter the images below to compare codecs on the same ones.")
    common = sorted(set.intersection(*(set(g["image"]) for _, g in df.groupby("codec"))))
    if common:  # one click instead of picking the growing sweep's images one by one
        st.button(f"Compare every codec on the {len(common)} image(s) all curves have", key=f"rd_common_{ds}",
                  on_click=lambda: st.session_state.update({f"rd_images_{ds}": common}))

c1, c2, c3 = st.columns(3)
metric = c1.selectbox("Quality metric", curve_metrics(),
                      format_func=lambda m: METRIC_LABELS[m], key="rd_metric")
spread = c2.selectbox("Per-image spread", ["minmax", "std", "none"],
                      format_func={"minmax": "min-max band", "std": "mean +/- 1 sd", "none": "none"}.get,
                      key="rd_spread")
codecs_all = sorted(df["codec"].unique())
codecs = c3.multiselect("Codecs", codecs_all, default=codecs_all, key=f"rd_codecs_{ds}")
images_all = sorted(df["image"].unique())
images = st.multiselect(f"Images (empty = all {len(images_all)})", images_all, key=f"rd_images_{ds}")
if images:
    df = df[df["image"].isin(images)]

refs = load_references()
ref_pick = st.multiselect("CompressAI published curves (Kodak, as CompressAI publishes them)", sorted(refs),
                          default=[k for k in ("jpeg", "compressai-cheng2020-anchor_mse_cuda") if k in refs],
                          key="rd_refs")
if ref_pick and df["dataset"].astype(str).iloc[0] != "kodak":
    st.caption("The published curves are Kodak results; this dataset is not Kodak.")
if ref_pick and images:
    st.caption(f"The published curves are means over all 24 Kodak images; yours are over the {len(images)} "
               "image(s) selected, so the two are not directly comparable.")
if ref_pick and metric not in ("psnr", "ms_ssim", "ms_ssim_db"):
    st.caption(f"CompressAI publishes PSNR and MS-SSIM only: its curves are not drawn for {METRIC_LABELS[metric]}.")
# one codec far out to the right (HEIF at its top qualities) would crush the rest: cut the axis at
# the 90th percentile of the mean curves' rates unless the user asks for everything
top = df[df["codec"].isin(codecs)].groupby(["codec", "quality"])["bpp"].mean()
full = st.toggle("Show the full bit-rate range", value=False, key="rd_full") if len(top) else True
cut = None if full or top.empty else float(min(top.max(), max(1.0, top.quantile(0.9)))) * 1.05
fig = rd_figure(df, metric, codecs, {k: refs[k] for k in ref_pick}, spread, max_bpp=cut)
st.plotly_chart(fig, key="rd_chart")

st.subheader("BD-rate")
anchor = st.selectbox("Anchor", codecs_all, index=codecs_all.index("jpeg") if "jpeg" in codecs_all else 0,
                      key=f"rd_anchor_{ds}")
rows = []
for codec in codecs:
    if codec == anchor:
        continue
    # two curves are compared on the images both have (a growing sweep's 2 images against its anchor's 24
    # would mix the images' difficulty into the codecs' difference)
    shared = sorted(set(df.loc[df["codec"] == codec, "image"]) & set(df.loc[df["codec"] == anchor, "image"]))
    pair = df[df["codec"].isin((codec, anchor)) & df["image"].isin(shared)]
    try:
        res = bd_rate(pair, anchor, codec, metric=metric)
        note = "" if res.overlap >= 0.5 else "the curves share little of their quality range: a rough figure"
        rows.append({"codec": codec, "from": source.get(codec, ""), "images": len(shared),
                     "BD-rate (%)": round(res.bd_rate, 1), "overlap (%)": round(100 * res.overlap),
                     "points": res.test_points, "anchor points": res.anchor_points, "note": note})
    except (ValueError, ZeroDivisionError) as exc:
        rows.append({"codec": codec, "from": source.get(codec, ""), "images": len(shared), "BD-rate (%)": None,
                     "overlap (%)": None, "points": None,
                     "anchor points": None, "note": str(exc).splitlines()[0] if shared else "no image in common"})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"Bjontegaard delta rate against {anchor} ({source.get(anchor, '')}) on {METRIC_LABELS[metric]} (pchip, mean curves over the "
               "selected images that both curves have: 'images'); negative means fewer bits for the same quality. It averages over the quality "
               "range both curves cover: 'overlap' is that share of the narrower curve's range.")

st.subheader("Per-quality means")
shown = [c for c in ("bpp", *METRICS) if c in df.columns and (c == "bpp" or get_metric(c).higher_is_better)]
means = df.groupby(["codec", "quality"])[shown].mean()
means.insert(0, "images", df.groupby(["codec", "quality"])["image"].nunique())
means = means.reset_index()
st.dataframe(means, hide_index=True)
st.download_button("Download the selected rows (CSV)", df[df["codec"].isin(codecs)].to_csv(index=False).encode(),
                   file_name="nicviz-rd.csv",
                   key="rd_csv")

names = {k: d for k, (_, d) in result_frames("classify").items() if "label" not in d or d["label"].isna().all()}
if names:
    from nicviz.analysis import classification_summary
    from nicviz.plots import curve_figure

    st.subheader("Machine perception: does an ImageNet classifier still see the same thing?")
    pick = st.selectbox("Consistency results", list(names), key="rd_consistency")
    summ = classification_summary(names[pick])
    summ["same top-1 (%)"] = 100 * (1 - summ["flip_rate"])
    summ["top-5 overlap (%)"] = 100 * summ["top5_overlap"]
    k1, k2 = st.columns(2)
    k1.plotly_chart(curve_figure(summ, "same top-1 (%)", "top-1 unchanged (%)"), key="rd_cons_top1")
    k2.plotly_chart(curve_figure(summ, "top-5 overlap (%)", "top-5 overlap (%)"), key="rd_cons_top5")
    st.caption("EfficientNet-Lite0 (ImageNet) on each original and its reconstruction: share of images whose top-1 "
               "class is unchanged, and the mean overlap of the top-5 classes.")
