"""Evidence files: checked by their content (never by name or declared type), stored by random name, removed whole.

A photo is a JPEG or a PNG whose structure holds together (a JPEG's start and
end markers and a frame header; a PNG's signature, a header chunk whose
checksum matches, and its end chunk); a video is an MP4 (an ISO base media
file whose first box is ``ftyp`` with an MP4 brand). Pillow is not a
dependency of FinePay, so photos are checked by structure rather than decoded.
Files are written under EVIDENCE_DIR by random names; nothing a driver sent
(a file name, a content type) is ever kept or echoed.
"""
import hashlib
import os
import secrets
import struct
import zlib
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from cases.models import PHOTO, VIDEO
from finepay.errors import invalid_field

MAX_PHOTOS = 5
MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"MSNV"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "video/mp4": ".mp4"}


@dataclass
class Evidence:
    """One checked file, in memory, before it is stored."""

    kind: str
    content_type: str
    data: bytes

    @property
    def sha256(self):
        """The file's SHA-256, kept with it so a copy can be matched to the case."""
        return hashlib.sha256(self.data).hexdigest()


def _is_jpeg(data):
    if len(data) < 64 or not data.startswith(b"\xff\xd8\xff") or b"\xff\xd9" not in data[-64:]:
        return False
    # A frame header (baseline, extended or progressive) says the file carries an image.
    return any(marker in data for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"))


def _is_png(data):
    if len(data) < 57 or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        return False
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc:
        return False
    width, height = struct.unpack(">II", data[16:24])
    return width > 0 and height > 0 and b"IEND" in data[-12:]


def _is_mp4(data):
    if len(data) < 16:
        return False
    size, box_type, brand = struct.unpack(">I4s4s", data[:12])
    return box_type == b"ftyp" and 16 <= size <= len(data) and brand in MP4_BRANDS


def sniff(data):
    """(kind, content type) of a file by its content, or None for anything that is not an accepted photo or video."""
    if _is_jpeg(data):
        return PHOTO, "image/jpeg"
    if _is_png(data):
        return PHOTO, "image/png"
    if _is_mp4(data):
        return VIDEO, "video/mp4"
    return None


def _megabytes(size):
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def check_files(uploads):
    """The checked Evidence of the uploaded files (werkzeug FileStorage), or an invalid_field on "evidence".

    Up to MAX_PHOTOS photos or one video, not both; each within its size limit.
    Each file is read at most one byte past its limit.
    """
    config = current_app.config
    photo_max, video_max = config["EVIDENCE_PHOTO_MAX_BYTES"], config["EVIDENCE_VIDEO_MAX_BYTES"]
    files = []
    for upload in uploads:
        if upload is None or not getattr(upload, "filename", None):
            continue  # an empty file input
        data = upload.stream.read(max(photo_max, video_max) + 1)
        found = sniff(data)
        if found is None:
            raise invalid_field("evidence", _("“%(name)s” is not a JPEG or PNG photo or an MP4 video. Send photos "
                                              "as JPEG or PNG, or one video as MP4.", name=_shown(upload.filename)))
        kind, content_type = found
        limit = photo_max if kind == PHOTO else video_max
        if len(data) > limit and kind == PHOTO:
            raise invalid_field("evidence", _("“%(name)s” is too large: a photo may be at most %(limit)s.",
                                              name=_shown(upload.filename), limit=_megabytes(limit)))
        if len(data) > limit:
            raise invalid_field("evidence", _("“%(name)s” is too large: a video may be at most %(limit)s.",
                                              name=_shown(upload.filename), limit=_megabytes(limit)))
        files.append(Evidence(kind, content_type, data))
    videos = sum(1 for f in files if f.kind == VIDEO)
    if videos and len(files) > 1:
        raise invalid_field("evidence", _("Send either up to %(num)d photos or one video, not both.", num=MAX_PHOTOS))
    if len(files) > MAX_PHOTOS:
        raise invalid_field("evidence", _("Send at most %(num)d photos.", num=MAX_PHOTOS))
    return files


def _shown(filename):
    # Only to name the file back in the message: short, one line.
    name = os.path.basename(str(filename)).replace("\n", " ").replace("\r", " ")
    return name[:60]


def request_limit(config):
    """The largest request body an evidence upload may have: five photos or one video, plus the form."""
    return max(MAX_PHOTOS * config["EVIDENCE_PHOTO_MAX_BYTES"], config["EVIDENCE_VIDEO_MAX_BYTES"]) + 256 * 1024


def evidence_dir():
    """The directory evidence files live in (created on first use, readable by FinePay only)."""
    path = current_app.config["EVIDENCE_DIR"]
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def store(files):
    """Write checked files under random names; returns [(stored name, Evidence)]. All or nothing."""
    if not files:
        return []
    folder = evidence_dir()
    written = []
    try:
        for evidence in files:
            name = secrets.token_hex(16) + EXTENSIONS[evidence.content_type]
            temporary = os.path.join(folder, f".{name}.part")
            try:
                with open(temporary, "xb") as out:
                    out.write(evidence.data)
                os.replace(temporary, os.path.join(folder, name))
            except BaseException:
                remove([os.path.basename(temporary)])
                raise
            written.append((name, evidence))
    except BaseException:
        remove(name for name, _evidence in written)
        raise
    return written


def remove(names):
    """Delete stored files (those already gone are no matter)."""
    folder = current_app.config["EVIDENCE_DIR"]
    for name in names:
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:
            pass


def path_of(stored_name):
    """The path of a stored file (its name is ours: random hex and an extension, never a driver's)."""
    if os.path.basename(stored_name) != stored_name or stored_name.startswith("."):
        raise ValueError("not a stored evidence name")
    return os.path.join(current_app.config["EVIDENCE_DIR"], stored_name)
