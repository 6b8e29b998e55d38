"""Shared helpers for the cases tests: real little photos and videos, filing through the service."""
import io
import struct
import zlib

from werkzeug.datastructures import FileStorage

STATEMENT = "I was not driving: the car was parked at home all day, see the photo."


def png_bytes(width=2, height=2, pad=0):
    """A genuine PNG (``pad`` bytes of extra text chunk make it as large as wanted)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x20\x20" * width for _y in range(height))
    extra = chunk(b"tEXt", b"Comment\x00" + b"x" * pad) if pad else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg_bytes():
    """A JPEG's shape: start marker, JFIF header, a frame header, end marker."""
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + b"\xff\xc0\x00\x11\x08\x00\x01\x00\x01\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
            + b"\x00" * 64 + b"\xff\xd9")


def mp4_bytes(size=256):
    """An MP4's first box (ftyp, brand mp42) and some payload."""
    return struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"mp42", 0, b"mp42", b"isom") + b"\x00" * (size - 24)


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    """A werkzeug FileStorage as a request would carry it."""
    return FileStorage(stream=io.BytesIO(data), filename=name, content_type=content_type)


def form_file(data, name="photo.jpg", content_type="image/jpeg"):
    """A (stream, name, type) tuple for the test client's multipart body."""
    return (io.BytesIO(data), name, content_type)
