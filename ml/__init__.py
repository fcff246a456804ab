"""Training and evaluation of PetroStream's anomaly model."""
