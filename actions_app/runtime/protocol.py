"""Messages between the web process and a sandbox worker: length-prefixed JSON over a pipe.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (one object).
The worker reads and writes with plain blocking calls. The web process uses non-blocking pipe
ends and select() with a deadline, so a worker that stops reading or answering can never block
the thread that is waiting for it.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time
from typing import Any

# NUL, and UTF-16 surrogates, which in a Python string are always unpaired (json.loads joins pairs).
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with every NUL character and unpaired UTF-16 surrogate in its strings (keys too)
    replaced by U+FFFD, which shows where it was.

    Action code can put either in what it logs, throws or returns: JavaScript strings may hold a
    lone surrogate, and JSON.stringify writes it as an escape that json.loads turns back into one.
    Neither can be encoded as UTF-8 or stored by PostgreSQL's text and jsonb, so without this the
    execution could not be recorded (or its worker could not even measure its logs)."""
    if isinstance(value, str):
        return _UNSTORABLE_CHARACTERS.sub("\ufffd", value) if _UNSTORABLE_CHARACTERS.search(value) else value
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


# An engine-made block reason is "<action slug> failed: <error message>" and must stay within the
# 1,000 characters a returned reason may have; slugs have up to 80.
MAX_ERROR_MESSAGE_CHARS = 900
# Where an exception was thrown, as the sandbox appends it (and compiler.source_map rewrites it).
_LOCATION_SUFFIX = re.compile(r" \(line \d+, column \d+[^()]{0,40}\)$")


def clip_error_message(message: str, limit: int = MAX_ERROR_MESSAGE_CHARS) -> str:
    """`message` cut to at most `limit` characters, with an ellipsis where it was cut; a location
    it ends with ("(line 3, column 9)") is kept, so the editor can still point at the line."""
    if len(message) <= limit:
        return message
    location = _LOCATION_SUFFIX.search(message[-80:])
    suffix = location.group(0) if location else ""
    return message[: limit - len(suffix) - 1] + "…" + suffix


FRAME_HEADER = struct.Struct(">I")
# Requests carry the compiled module, replies at most 64 KiB of result plus 8 KiB of logs; a
# larger frame means something is wrong at the other end.
MAX_FRAME_BYTES = 32 * 1024 * 1024


class ChannelClosed(Exception):
    """The other end closed the pipe (for a worker: it exited or was killed)."""


class ChannelTimeout(Exception):
    """The deadline passed before a whole frame could be read or written."""


class ChannelCorrupt(Exception):
    """The other end sent something that is not a frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"message of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit")
    return FRAME_HEADER.pack(len(body)) + body


def _decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as error:
        raise ChannelCorrupt(f"frame is not JSON: {error}") from error
    if not isinstance(message, dict):
        raise ChannelCorrupt("frame is not a JSON object")
    return message


def _body_length(header: bytes) -> int:
    (length,) = FRAME_HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ChannelCorrupt(f"frame of {length} bytes exceeds the limit")
    return int(length)


# ---- blocking side (the worker) ----------------------------------------------------------------


def _read_exactly(fd: int, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = os.read(fd, count - len(chunks))
        if not chunk:
            raise ChannelClosed("pipe closed")
        chunks += chunk
    return bytes(chunks)


def read_frame(fd: int) -> dict[str, Any]:
    """Block until one whole frame arrives on `fd`."""
    length = _body_length(_read_exactly(fd, FRAME_HEADER.size))
    return _decode_body(_read_exactly(fd, length))


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Block until `message` is written to `fd`."""
    view = memoryview(encode_frame(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


# ---- deadline side (the web process; fds must be non-blocking) ---------------------------------


def _wait(fd: int, *, for_write: bool, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ChannelTimeout("deadline passed")
    # poll() rather than select(): a busy web process can hold file descriptors above FD_SETSIZE.
    poller = select.poll()
    poller.register(fd, select.POLLOUT if for_write else select.POLLIN)
    if not poller.poll(max(1, math.ceil(remaining * 1000))):
        raise ChannelTimeout("deadline passed")


class FrameChannel:
    """The web process's ends of one worker's pipes (non-blocking), one request at a time.

    Reading and writing give up at a deadline without losing their place: a frame half read or
    half written when the deadline passed is carried on by the next call, so a caller can be
    answered on time and someone else can go on waiting for the worker's reply afterwards."""

    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self._request_fd = request_fd
        self._reply_fd = reply_fd
        self._unsent = memoryview(b"")
        self._received = bytearray()

    @property
    def sending(self) -> bool:
        """True while part of a request is still to be written."""
        return bool(self._unsent)

    def send_until(self, frame: bytes | None, deadline: float) -> None:
        """Write `frame` (or, with None, what is left of the last one) by `deadline`."""
        if frame is not None:
            self._unsent = memoryview(frame)
        while self._unsent:
            try:
                written = os.write(self._request_fd, self._unsent)
            except BlockingIOError:
                _wait(self._request_fd, for_write=True, deadline=deadline)
                continue
            except (BrokenPipeError, ConnectionResetError) as error:
                raise ChannelClosed("pipe closed") from error
            self._unsent = self._unsent[written:]

    def _complete_frame(self) -> dict[str, Any] | None:
        if len(self._received) >= FRAME_HEADER.size:
            length = _body_length(bytes(self._received[: FRAME_HEADER.size]))
            end = FRAME_HEADER.size + length
            if len(self._received) >= end:
                body = bytes(self._received[FRAME_HEADER.size : end])
                del self._received[:end]
                return _decode_body(body)
        return None

    def _read_some(self) -> bool:
        """Read what the pipe holds; False if it holds nothing yet."""
        try:
            chunk = os.read(self._reply_fd, 1 << 16)
        except BlockingIOError:
            return False
        if not chunk:
            raise ChannelClosed("pipe closed")
        self._received += chunk
        return True

    def receive_until(self, deadline: float) -> dict[str, Any]:
        """The next whole frame, read by `deadline` (a time.monotonic() value)."""
        while True:
            frame = self._complete_frame()
            if frame is not None:
                return frame
            if not self._read_some():
                _wait(self._reply_fd, for_write=False, deadline=deadline)

    def receive_available(self) -> dict[str, Any] | None:
        """The next whole frame if it has arrived already, else None; never waits."""
        while True:
            frame = self._complete_frame()
            if frame is not None or not self._read_some():
                return frame
