"""PetroStream engine: 3W readers, stream, consumer, lake, SQL and model store, headless.

Nothing here imports Streamlit; the portal and the command line are both clients of it.
"""
