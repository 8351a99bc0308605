"""What a file is, from its first bytes (its "magic"), never from its name.

A client names its files as it likes: ``photo.png`` may hold a Windows program or a page of HTML
that a browser would run. The type that counts is the one read here from the content; the name's
extension may only agree with it (:func:`extension_conflicts`). Pure Python, no libmagic: the
formats a chat accepts are few, and each is told by a fixed signature.
"""

from __future__ import annotations

import codecs
import os

SNIFF_BYTES = 8192  # enough for every signature below and for telling text from binary

OCTET_STREAM = "application/octet-stream"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# (offset, signature, type): the first match wins, so longer and more specific ones come first.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"MZ", "application/x-msdownload"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
    (0, b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
    (0, b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
    (0, b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (0, b"\xca\xfe\xba\xbe", "application/x-mach-binary"),  # also a Java class: refused either way
    (0, b"\x00asm", "application/wasm"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # old Office files, macros and all
)

# What a text file starts with when a browser would treat it as markup or a program: refused
# as text/plain even if it is valid UTF-8.
_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe", b"<svg", b"<?xml", b"<!--")

_OOXML = {
    b"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    b"xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    b"ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

# The extensions a name may end with, and the detected types each stands for. A name whose
# extension is listed here but whose content is another type is refused: the extension lies.
EXTENSION_TYPES: dict[str, frozenset[str]] = {
    ext: frozenset(types)
    for ext, types in {
        ".jpg": {"image/jpeg"},
        ".jpeg": {"image/jpeg"},
        ".jpe": {"image/jpeg"},
        ".png": {"image/png"},
        ".gif": {"image/gif"},
        ".webp": {"image/webp"},
        ".pdf": {"application/pdf"},
        ".txt": {"text/plain"},
        ".text": {"text/plain"},
        ".log": {"text/plain"},
        ".csv": {"text/plain"},
        ".md": {"text/plain"},
        ".json": {"text/plain"},
        ".zip": {"application/zip"},
        ".docx": {_OOXML[b"word/"], "application/zip"},
        ".xlsx": {_OOXML[b"xl/"], "application/zip"},
        ".pptx": {_OOXML[b"ppt/"], "application/zip"},
        ".odt": {"application/vnd.oasis.opendocument.text", "application/zip"},
        ".ods": {"application/vnd.oasis.opendocument.spreadsheet", "application/zip"},
        ".mp3": {"audio/mpeg"},
        ".ogg": {"audio/ogg"},
        ".oga": {"audio/ogg"},
        ".opus": {"audio/ogg"},
        ".flac": {"audio/flac"},
        ".wav": {"audio/wav"},
        ".mp4": {"video/mp4", "audio/mp4"},
        ".m4a": {"audio/mp4", "video/mp4"},
        ".mov": {"video/quicktime"},
        ".webm": {"video/webm"},
        ".html": {"text/html"},
        ".htm": {"text/html"},
        ".svg": {"image/svg+xml"},
        ".exe": {"application/x-msdownload"},
        ".dll": {"application/x-msdownload"},
    }.items()
}

# Names that make the system run (or a browser render) the file when it is opened, whatever its
# bytes: a script is valid text, and a Java or Android program, or an Office file with macros,
# is a valid ZIP. Each would pass the content check as text/plain or application/zip, and then
# run on the double-click of whoever downloads it. Refused by name (:func:`runs_when_opened`).
RUNNABLE_EXTENSIONS = frozenset(
    {
        # Windows: scripts, shortcuts, installers, registry files
        ".bat", ".cmd", ".com", ".pif", ".scr", ".cpl", ".msi", ".msp", ".msc", ".ps1", ".psm1", ".psd1",
        ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".wsc", ".hta", ".reg", ".inf", ".scf", ".lnk", ".url",
        ".application", ".appref-ms", ".gadget", ".appx", ".msix", ".appxbundle", ".msixbundle",
        # Java, Android, macOS and Linux desktops
        ".jar", ".jnlp", ".apk", ".command", ".desktop",
        # Office files that carry macros
        ".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".xll", ".pptm", ".potm", ".ppam", ".ppsm", ".sldm",
        # pages a browser renders (opened from the downloads folder)
        ".xhtml", ".xht", ".shtml", ".mht", ".mhtml", ".svgz",
    }
)  # fmt: skip

# The extension a stored file gets, from its detected type (never the client's).
TYPE_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "application/zip": ".zip",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "audio/mp4": ".m4a",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
}


def detect(head: bytes) -> str:
    """The MIME type of a file from its first bytes (at least :data:`SNIFF_BYTES` when it has them)."""
    for offset, signature, mime in _SIGNATURES:
        if head.startswith(signature, offset):
            return mime
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(head[8:12], OCTET_STREAM)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            return "image/heic" if brand != b"avif" else "image/avif"
        return "video/mp4"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(head)
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return _text_kind(head)


def _zip_kind(head: bytes) -> str:
    # An OpenDocument file stores an uncompressed "mimetype" entry first; an Office Open XML one
    # names its parts ("word/document.xml") near the start.
    name_len = int.from_bytes(head[26:28], "little")
    first = head[30 : 30 + name_len]
    if first == b"mimetype":
        extra = int.from_bytes(head[28:30], "little")
        start = 30 + name_len + extra
        declared = head[start : start + 60].split(b"PK", 1)[0].decode("ascii", "replace")
        if declared.startswith("application/vnd.oasis.opendocument."):
            return declared
    for prefix, mime in _OOXML.items():
        if prefix in head[:SNIFF_BYTES]:
            return mime
    return "application/zip"


def _text_kind(head: bytes) -> str:
    """Text or not: UTF-8 (a BOM allowed) without NUL or other control bytes but tab and line breaks."""
    if not head:
        return "application/x-empty"
    sample = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if sample.lstrip().lower().startswith(_MARKUP) or sample.startswith(b"#!"):
        return "text/html" if not sample.startswith(b"#!") else "text/x-script"
    try:
        # Not final: the sample may end inside a multi-byte character.
        text = codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return OCTET_STREAM
    if any(ch < " " and ch not in "\t\n\r\f" for ch in text):
        return OCTET_STREAM
    lowered = text.lower()
    if "<script" in lowered or "<html" in lowered or "<iframe" in lowered:
        return "text/html"  # markup further in: a browser sniffing it would still run it
    return "text/plain"


def runs_when_opened(name: str) -> bool:
    """Whether the name's extension makes a system run the file when it is opened (``setup.bat``)."""
    return os.path.splitext(name)[1].lower() in RUNNABLE_EXTENSIONS


def extension_conflicts(name: str, detected: str) -> bool:
    """Whether the name's extension claims a type the content is not (``photo.png`` holding a PDF)."""
    ext = os.path.splitext(name)[1].lower()
    claimed = EXTENSION_TYPES.get(ext)
    return claimed is not None and detected not in claimed
