"""Training scripts of the learned stages (python -m codec.training.<name>); never imported when decoding."""
