"""asyncinfer: CLI and local stack for the async inference pipeline."""
