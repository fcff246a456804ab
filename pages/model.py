"""Model: the published versions (activate, roll back), training a new one, evaluating models.

Training runs here with a progress bar; the trained model stays a *candidate* in this browser
session until it is published. A model file trained elsewhere can be uploaded: it is published
only if it carries the trainer's signature (``control_center/model_upload.py``).
"""

from __future__ import annotations

import streamlit as st

from control_center import charts, model_upload, model_view, ui, widgets
from engine import insights
from engine.model import load
from ml.evaluate import evaluate
from ml.train_model import TrainingOptions, train

CANDIDATE, EVALUATION = "model-candidate", "model-evaluation"

backend = ui.backend()
models = backend.models
st.title("Model")
ui.show_flash()

st.subheader("Published versions")
versions = []
with ui.shielded("Listing the model versions"):
    versions = models.versions()
    if not versions:
        ui.empty_state("No model has been published yet: new data lands unscored.",
                       "Train one below (the demo data works), then publish it.")
    else:
        st.dataframe(model_view.versions_table(versions), hide_index=True, key="model-versions")
        names = [v.version for v in versions]
        active = models.active_version()
        pick_column, activate_column, rollback_column = st.columns([3, 1, 1], vertical_alignment="bottom")
        picked = pick_column.selectbox("Version", names, index=names.index(active) if active in names else 0,
                                       key="model-pick")
        if activate_column.button("Activate", key="model-activate", width="stretch"):
            with ui.shielded("Activating"):
                models.activate(picked)
                ui.flash(f"{picked} is active; consumers switch to it within seconds.")
        if rollback_column.button("Roll back", key="model-rollback", width="stretch"):
            with ui.shielded("Rolling back"):
                ui.flash(f"Rolled back to {models.rollback()}.")
active = models.active_version() if versions else None
if active:
    st.markdown(f"**Active: `{active}`**")
    with ui.shielded(f"Reading model {active}"):
        model_view.show_manifest(models.load(active).manifest)
        histogram = insights.score_histogram(backend.sql, active)
        if not histogram.empty:
            st.plotly_chart(charts.score_distribution(histogram, insights.SCORE_BIN, insights.active_threshold(models)),
                            key="model-scores")

st.subheader("Train a new version")
files = widgets.pick_data("train", backend.settings.home)
rate_column, trees_column, rows_column, seed_column = st.columns(4)
defaults = TrainingOptions()
false_alarm_rate = rate_column.number_input("False-alarm budget (share of normal rows)", 0.0001, 0.2,
                                            defaults.false_alarm_rate, step=0.001, format="%.4f", key="train-rate")
trees = trees_column.number_input("Trees", 10, 1_000, defaults.n_estimators, step=10, key="train-trees")
max_rows = rows_column.number_input("Max training rows", 1_000, 5_000_000, defaults.max_training_rows,
                                    step=10_000, key="train-rows")
seed = seed_column.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="train-seed")
if st.button("Train", type="primary", key="model-train", disabled=not files):
    bar = st.progress(0.0, text="Computing features…")
    with ui.shielded("Training"):
        options = TrainingOptions(false_alarm_rate=float(false_alarm_rate), n_estimators=int(trees),
                                  max_training_rows=int(max_rows), seed=int(seed),
                                  prior_cache=backend.settings.cache)
        payload, manifest = train([f.path for f in files], options, progress=lambda done, total, what: bar.progress(
            done / total, text=f"Training: {what} ({done}/{total})"))
        bar.progress(1.0, text="Trained")
        st.session_state[CANDIDATE] = (payload, manifest)

candidate = st.session_state.get(CANDIDATE)
if candidate is not None:
    payload, manifest = candidate
    with st.container(border=True):
        st.markdown(f"**Candidate** (trained in this session, sha256 `{manifest['sha256'][:12]}…`, not published)")
        model_view.show_manifest(manifest)
        activate_now = st.checkbox("Activate when published", value=True, key="publish-activate")
        if st.button("Publish", type="primary", key="model-publish"):
            with ui.shielded("Publishing"):
                version = models.publish(payload, manifest, activate=activate_now)
                del st.session_state[CANDIDATE]
                ui.flash(f"Published {version}" + (" and activated it." if activate_now else "."))

model_upload.section(models)

st.subheader("Evaluate")
choices = (["candidate"] if st.session_state.get(CANDIDATE) else []) + [v.version for v in versions]
if not choices:
    ui.empty_state("Nothing to evaluate yet: train or publish a model first.")
elif files is None:
    ui.empty_state("Choose labeled data above to evaluate on.")
else:
    subject = st.selectbox("Model", choices, key="evaluate-subject")
    st.caption("Replays the chosen files through the consumer's scoring and alarm code. Evaluate on wells the model "
               "was not trained on for an honest picture.")
    if st.button("Evaluate on the chosen data", key="model-evaluate"):
        with st.spinner("Evaluating…"), ui.shielded("Evaluating"):
            model = (load(*st.session_state[CANDIDATE], "candidate") if subject == "candidate"
                     else models.load(subject))
            st.session_state[EVALUATION] = evaluate(model, [f.path for f in files]).to_json()
report = st.session_state.get(EVALUATION)
if report is not None:
    st.caption(f"Evaluation of {report.get('meta', {}).get('model_version', 'a model')}")
    model_view.show_evaluation(report)
