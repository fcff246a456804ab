"""Backend implementations of the engine's ports, one subpackage per backend."""
