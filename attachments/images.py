"""Images: their size, a thumbnail, and the original without its location.

Every decode is bounded: an image's header is read first and one of more than
``CHAT_ATTACHMENT_MAX_PIXELS`` pixels is refused before any pixel is decoded (a 40 KB PNG can
claim 50,000 x 50,000 pixels, ten gigabytes once decoded). Only the first frame of an animation
is decoded, for its thumbnail.

The stored original keeps its pixels byte for byte: its metadata segments are rewritten rather
than the image re-encoded. The GPS block of its EXIF goes (and XMP, which repeats it), the rest
of the EXIF (orientation, camera) stays; a JPEG keeps its first picture only (the others of a
Multi-Picture file carry EXIF of their own). Thumbnails are encoded from pixels alone, no metadata.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError, features

from streams.errors import TOO_LARGE, ChatError

GPS_IFD = 0x8825
ORIENTATION = 0x0112
THUMBNAIL_FORMAT, THUMBNAIL_TYPE, THUMBNAIL_EXT = (
    ("WEBP", "image/webp", ".webp") if features.check("webp") else ("PNG", "image/png", ".png")
)
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


class NotAnImage(ValueError):
    """The bytes start like an image but do not decode as one."""


@dataclass
class ProcessedImage:
    width: int  # as shown: after the EXIF orientation
    height: int
    original: bytes  # the file to store: the upload without location metadata
    thumbnail: bytes  # THUMBNAIL_FORMAT, at most thumbnail_px on its longer side


def process(data: bytes, *, mime: str, max_pixels: int, thumbnail_px: int) -> ProcessedImage:
    """Check, measure and thumbnail an image whose type was detected as ``mime``."""
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]]) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > max_pixels:
                raise ChatError(TOO_LARGE, f"The image is {width}x{height} pixels; the limit is {max_pixels:,} pixels.")
            exif = image.getexif()
            orientation = exif.get(ORIENTATION, 1)
            if orientation in (5, 6, 7, 8):  # turned a quarter: shown with its sides swapped
                width, height = height, width
            thumbnail = _thumbnail(image, thumbnail_px)
    except Image.DecompressionBombError as exc:
        raise ChatError(TOO_LARGE, f"The image has too many pixels; the limit is {max_pixels:,}.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise NotAnImage(str(exc)) from exc
    return ProcessedImage(width, height, strip_location(data, mime=mime), thumbnail)


def _thumbnail(image: Image.Image, size: int) -> bytes:
    image.seek(0)
    image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, far cheaper
    upright = ImageOps.exif_transpose(image)  # the orientation the EXIF asks for, applied to pixels
    upright.thumbnail((size, size), Image.Resampling.LANCZOS)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info)
    pixels = upright.convert("RGBA" if has_alpha else "RGB")
    # A new image from pixels alone: nothing of the original's metadata (EXIF, ICC, XMP) comes along.
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    clean.save(out, THUMBNAIL_FORMAT, quality=82) if THUMBNAIL_FORMAT == "WEBP" else clean.save(out, THUMBNAIL_FORMAT)
    return out.getvalue()


# -- location metadata -------------------------------------------------------------------------------
def strip_location(data: bytes, *, mime: str) -> bytes:
    """The image without its location: GPS EXIF and XMP removed, pixels untouched."""
    if mime == "image/jpeg":
        return _jpeg_strip(data)
    if mime == "image/png":
        return _png_strip(data)
    if mime == "image/webp":
        return _webp_strip(data)
    if mime == "image/gif":
        return _gif_strip(data)
    return data


def _exif_without_gps(payload: bytes) -> bytes | None:
    """An APP1 EXIF payload (``Exif\\0\\0`` + TIFF) without its GPS block; None to drop it whole."""
    exif = Image.Exif()
    try:
        exif.load(payload)
        if GPS_IFD not in exif and GPS_IFD not in exif._ifds:
            return payload
        exif.pop(GPS_IFD, None)
        exif._ifds.pop(GPS_IFD, None)
        out = exif.tobytes()
    except Exception:  # noqa: BLE001 - an EXIF block we cannot rewrite is dropped, never kept
        return None
    return out if len(out) <= 65533 else None


def _jpeg_strip(data: bytes) -> bytes:
    """The primary image of a JPEG, its segments rewritten, up to its end marker (EOI).

    Walks every segment, those between the scans of a progressive JPEG too, and stops at the
    first EOI: what follows is another picture (an MPO's, a phone's depth map or HDR gain map:
    Multi-Picture Format), each with EXIF of its own, GPS included, so it is not kept, and nor is
    the MPF index (APP2) that points at it.
    """
    if not data.startswith(b"\xff\xd8"):
        raise NotAnImage("not a JPEG")
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            raise NotAnImage("broken JPEG segment")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of the primary image: nothing after it is kept
            out += b"\xff\xd9"
            return bytes(out)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            out += data[pos : pos + 2]
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2:
            raise NotAnImage("broken JPEG segment length")
        end = pos + 2 + length
        segment, payload = data[pos:end], data[pos + 4 : end]
        if marker == 0xDA:  # start of scan: its header, then entropy-coded data up to the next marker
            scan_end = _scan_end(data, end)
            out += data[pos:scan_end]
            pos = scan_end
            continue
        pos = end
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            kept = _exif_without_gps(payload)
            if kept is not None:
                out += b"\xff\xe1" + struct.pack(">H", len(kept) + 2) + kept
            continue
        if marker == 0xE1 or marker == 0xED:  # XMP (may repeat the location), IPTC (names places)
            continue
        if marker == 0xE2 and payload.startswith(b"MPF\x00"):  # the index of the pictures dropped above
            continue
        out += segment
    out += data[pos:]  # a truncated file (no EOI): what is left, as decoders take it
    return bytes(out)


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at ``pos`` ends: at the next marker.

    In that data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker (0xD0-0xD7), or
    by fill bytes (0xFF) before a marker; any other byte after it is the marker that ends the scan.
    """
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        after = pos + 1
        while after < len(data) and data[after] == 0xFF:
            after += 1
        if after >= len(data):
            return len(data)
        if data[after] == 0x00 or 0xD0 <= data[after] <= 0xD7:
            pos = after + 1
            continue
        return after - 1


_GIF_XMP = b"XMP DataXMP"  # the application extension that carries XMP (an editor's, a photo's location)


def _gif_strip(data: bytes) -> bytes:
    """A GIF without its XMP application extension, every other block as it was.

    GIF has no EXIF, but editors write the source photo's XMP (GPS included) into an application
    extension. A GIF whose blocks do not parse is kept as it is: Pillow decoded it already.
    """
    if len(data) < 13 or not data.startswith((b"GIF87a", b"GIF89a")):
        return data
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # header, screen, global colours
    out = bytearray(data[:pos])
    dropped = False
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # the trailer
            out.append(0x3B)
            return bytes(out) if dropped else data
        if block == 0x21 and pos + 1 < len(data):  # an extension: label, then sub-blocks
            end = _gif_sub_blocks_end(data, pos + 2)
            if data[pos + 1] == 0xFF and data[pos + 2 : pos + 3 + len(_GIF_XMP)] == bytes([len(_GIF_XMP)]) + _GIF_XMP:
                dropped = True
            else:
                out += data[pos:end]
        elif block == 0x2C and pos + 10 <= len(data):  # an image: descriptor, local colours, LZW data
            flags = data[pos + 9]
            start = pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # +1: LZW code size
            end = _gif_sub_blocks_end(data, start)
            out += data[pos:end]
        else:
            return data
        if end > len(data):
            return data
        pos = end
    return bytes(out) if dropped else data


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    """The end of a chain of GIF sub-blocks (each a length byte and its bytes, then a zero)."""
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return len(data) + 1  # truncated


_PNG_DROPPED = {b"eXIf", b"tEXt", b"zTXt", b"iTXt"}


def _png_strip(data: bytes) -> bytes:
    out = bytearray(data[:8])
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if kind not in _PNG_DROPPED:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            break
    return bytes(out)


def _webp_strip(data: bytes) -> bytes:
    # Only the chunks inside the RIFF container: bytes after it (another file appended, with
    # EXIF of its own) are no part of the image and are not kept.
    riff_end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0]) if len(data) >= 8 else len(data)
    chunks = []
    pos = 12
    while pos + 8 <= riff_end:
        kind, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + length + (length & 1)
        if kind not in (b"EXIF", b"XMP "):
            chunk = bytearray(data[pos:end])
            if kind == b"VP8X":
                chunk[8] &= ~(0x08 | 0x04) & 0xFF  # the flags say no EXIF, no XMP any more
            chunks.append(bytes(chunk))
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body
