"""Storage backends: move named blobs. The content-addressed store sits on top."""
