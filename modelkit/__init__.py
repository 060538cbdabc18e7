"""Model build: export, render per target, validate and hash the Triton model repositories.

A plain library (no Pulumi): ``python -m modelkit --help``; see docs/models.md.
"""
