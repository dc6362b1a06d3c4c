"""flow-datastore-sqlite: Flow's blobs in one SQLite file."""
