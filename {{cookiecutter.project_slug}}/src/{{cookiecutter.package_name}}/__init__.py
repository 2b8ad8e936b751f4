"""The model described by model.yaml: one module per stage, run through `python -m <package>`."""
