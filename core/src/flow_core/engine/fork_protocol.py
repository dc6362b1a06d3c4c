"""The fork server's wire: one msgpack message per ``SOCK_SEQPACKET`` packet, with file
descriptors passed alongside. Both the runtime's local compute and the fork server speak it.

A forked task talks to the runtime over a stream of its own (its channel): msgpack frames,
each behind its length (`write_frame`, `read_frame`)."""

from __future__ import annotations

import array
import os
import signal
import socket
import struct
import sys
import traceback
from typing import Any, Callable, NoReturn

import msgpack

MAX_MESSAGE = 1 << 20
FRAME = struct.Struct("<I")


def send_message(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = msgpack.packb(message)
    if fds:
        sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.send(payload)


def receive_message(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors it carried; (None, []) when the peer has gone."""
    payload, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 8)
    if not payload:
        return None, []
    return msgpack.unpackb(payload), list(fds)


def write_frame(fd: int, value: Any) -> None:
    payload = msgpack.packb(value)
    data = memoryview(FRAME.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


def read_frame(fd: int) -> Any:
    """The next frame's value; EOFError if the stream ends first."""
    (size,) = FRAME.unpack(_read_exactly(fd, FRAME.size))
    return msgpack.unpackb(_read_exactly(fd, size))


def _read_exactly(fd: int, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            raise EOFError("the channel closed in the middle of a frame")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def stop_forked_task(pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Signal (SIGTERM unless told) a forked task and what it started. A child leads its own
    process group only once it has called setsid, a moment after the fork: until then, signal
    the child itself."""
    try:
        os.killpg(pid, sig)
        return
    except ProcessLookupError:
        pass
    except PermissionError:
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def end_forked_child(body: Callable[[], int]) -> NoReturn:
    """In a process just forked: run ``body`` and end the process with the status it returns,
    never going back into the stack the parent was in. ``sys.exit`` in it gives its code; any
    other exception is printed and gives 1; what Python still holds of the output is flushed."""
    code = 1
    try:
        code = body()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
