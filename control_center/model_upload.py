"""The Model page's upload: a model file and its manifest, published only if the trainer signed them.

An uploaded artifact is pickled code from whoever holds a browser, so it goes through the
store's publish, which checks the sha256 and the signature (:mod:`engine.model_signing`)
before a byte is unpickled; anything unsigned, signed by another key or edited is refused
with one line naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from control_center import ui
from engine.errors import InputError
from engine.model import MANIFEST_SUFFIX, parse_manifest
from engine.model_store import ModelStore


def uploaded_model(files: Sequence[tuple[str, bytes]]) -> tuple[bytes, dict[str, Any], str]:
    """The artifact bytes, its manifest and the artifact's name from ``(name, bytes)`` uploads, unverified."""
    manifests = [f for f in files if f[0].endswith(MANIFEST_SUFFIX)]
    artifacts = [f for f in files if not f[0].endswith(MANIFEST_SUFFIX)]
    if len(manifests) != 1 or len(artifacts) != 1:
        raise InputError(f"upload one model file and its manifest (NAME and NAME{MANIFEST_SUFFIX}, "
                         "as `python -m engine train --model-out NAME` writes them)")
    (name, payload), (manifest_name, raw) = artifacts[0], manifests[0]
    return payload, parse_manifest(raw, manifest_name), name


def section(models: ModelStore) -> None:
    """Upload a signed model file and publish it."""
    st.subheader("Upload a model file")
    st.caption("A model trained elsewhere with `python -m engine train --model-out NAME`: upload NAME and "
               f"NAME{MANIFEST_SUFFIX}. Only models signed with this installation's model key are published; "
               "anything else is refused before it is loaded.")
    uploads = st.file_uploader("Model file and manifest", accept_multiple_files=True, key="model-upload")
    activate = st.checkbox("Activate when published", value=True, key="upload-activate")
    if st.button("Publish uploaded model", key="model-upload-publish", disabled=not uploads):
        with ui.shielded("Publishing the uploaded model"):
            payload, manifest, name = uploaded_model([(u.name, u.getvalue()) for u in uploads or ()])
            version = models.publish(payload, manifest, activate=activate, source=name)
            ui.flash(f"Published {name} as {version}" + (" and activated it." if activate else "."))
