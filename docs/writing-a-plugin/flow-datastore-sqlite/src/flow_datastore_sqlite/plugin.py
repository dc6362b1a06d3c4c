"""What flow-datastore-sqlite adds to Flow: one datastore and the setting it reads."""

from flow_core.plugin_api import Backend, Setting, hookimpl

#: Where the blobs are kept. Declared here so that `flow configure show` lists it.
SQLITE_FILE = Setting("METAFLOW_DATASTORE_SQLITE_FILE", None, "the SQLite file the sqlite datastore keeps blobs in")


@hookimpl
def flow_storage_backends():
    # The class as a "module:Class" path: its module is imported only when a run selects "sqlite".
    return [Backend("sqlite", "flow_datastore_sqlite.storage:SqliteStorage", "every blob in one SQLite file")]


@hookimpl
def flow_settings():
    return [SQLITE_FILE]
