"""The model registry: versions with lineage (GTO tags + committed entries), content-addressed weights,
gated promotion with an audit log, and an HTML evaluation report per version."""
