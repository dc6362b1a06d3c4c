"""``flow ui [--host 127.0.0.1] [--port 8324]``."""

from __future__ import annotations

import click

DEFAULT_PORT = 8324


@click.command("ui", short_help="Serve a read-only web UI of every run.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (anything but loopback shows your runs to the network).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
def ui(host: str, port: int) -> None:
    """Serve a read-only web UI of every run, through the configured datastore and metadata."""
    from .server import make_server

    server = make_server(host, port)
    click.echo(f"Serving the Flow UI on http://{host}:{server.server_address[1]} (read-only; Ctrl-C stops it)",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
