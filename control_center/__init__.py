"""The PetroStream portal: a Streamlit app (``app.py``) and the small UI helpers its pages share."""
