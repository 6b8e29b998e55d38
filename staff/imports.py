"""Violation CSV uploads from the console: kept aside, checked by a dry run, then applied on request.

The file goes through the same importer as ``flask --app wsgi violations
import`` (check_utf8, read_csv, import_rows). Between the dry run and the
apply it waits in the instance folder under a random token, readable only
by the staff member who uploaded it, for at most STAGED_TTL.
"""
import json
import os
import re
import secrets
import time

from flask import current_app
from flask_babel import gettext as _

from finepay.errors import ApiError
from violations.importer import ImportFileError, check_utf8, import_rows, read_csv

STAGED_TTL = 3600  # seconds
TOKEN = re.compile(r"^[0-9a-f]{32}\Z")

__all__ = ["ImportFileError", "apply_staged", "stage_upload"]


def _folder():
    path = os.path.join(current_app.instance_path, "staff-imports")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _paths(token):
    folder = _folder()
    return os.path.join(folder, f"{token}.csv"), os.path.join(folder, f"{token}.json")


def _forget(token):
    for path in _paths(token):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _sweep(now):
    """Remove uploads nobody applied within STAGED_TTL."""
    for name in os.listdir(_folder()):
        path = os.path.join(_folder(), name)
        try:
            if now - os.path.getmtime(path) > STAGED_TTL:
                os.remove(path)
        except FileNotFoundError:
            pass


def run_import(path, **kwargs):
    """Import a UTF-8 CSV file with the CLI's importer (a BOM is fine); raises ImportFileError."""
    check_utf8(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        return import_rows(read_csv(f), **kwargs)


def stage_upload(upload, owner_id, actor):
    """Keep an uploaded file aside and dry-run it; returns (token, ImportReport). Raises ImportFileError."""
    now = time.time()
    _sweep(now)
    token = secrets.token_hex(16)
    csv_path, meta_path = _paths(token)
    upload.save(csv_path)
    filename = os.path.basename(upload.filename or "upload.csv")[:120]
    try:
        report = run_import(csv_path, source=f"staff upload {filename}", actor=actor, dry_run=True)
    except ImportFileError:
        _forget(token)
        raise
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump({"owner": owner_id, "filename": filename, "created": now}, f)
    return token, filename, report


def apply_staged(token, owner_id, actor):
    """Apply a file that passed its dry run; returns (filename, ImportReport). The staged file is then gone."""
    if not isinstance(token, str) or not TOKEN.match(token):
        raise ApiError(_("No such upload."), code="not_found", status=404)
    csv_path, meta_path = _paths(token)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (FileNotFoundError, ValueError):
        raise ApiError(_("This upload has expired or was already applied. Upload the file again."),
                       code="not_found", status=404) from None
    if meta.get("owner") != owner_id:
        raise ApiError(_("No such upload."), code="not_found", status=404)
    if time.time() - meta.get("created", 0) > STAGED_TTL:
        _forget(token)
        raise ApiError(_("This upload has expired. Upload the file again."), code="not_found", status=404)
    # Claim it first, so that a double click cannot apply the file twice.
    claimed = csv_path + ".applying"
    try:
        os.rename(csv_path, claimed)
    except FileNotFoundError:
        raise ApiError(_("This upload was already applied."), code="conflict", status=409) from None
    try:
        report = run_import(claimed, source=f"staff upload {meta['filename']}", actor=actor)
    finally:
        _forget(token)
        try:
            os.remove(claimed)
        except FileNotFoundError:
            pass
    return meta["filename"], report
