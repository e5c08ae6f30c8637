"""Messages over a pipe between the judge and the student's child: an 8-byte length, then that many bytes."""
import os
import struct

HEADER = struct.Struct("!Q")
MAX_REPLY = 2 << 30  # bytes: a reply larger than this is not an honest tensor


class TooLarge(Exception):
    """A message announced more bytes than any honest one has."""


def send(fd: int, payload: bytes) -> None:
    data = HEADER.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> bytes | None:
    header = read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_REPLY:
        raise TooLarge(f"{size:,} bytes")
    return read_exactly(fd, size)


def read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
