"""What a file really is, from its first bytes (never from its name or the
type the phone declared): the photo and audio formats Qorgau accepts, and a
plain name for common things it refuses."""

# The first bytes this module needs to decide.
HEAD_BYTES = 64

PHOTO_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP",
               "image/heic": "HEIC"}
AUDIO_TYPES = {"audio/webm": "WebM", "audio/ogg": "Ogg", "audio/mp4": "MP4/AAC",
               "audio/aac": "AAC"}
# File-name endings that fit each kind (a name is checked against the content,
# never trusted for it).
EXTENSIONS = {
    "photo": {"jpg", "jpeg", "jfif", "png", "webp", "heic", "heif"},
    "audio": {"webm", "weba", "ogg", "oga", "opus", "m4a", "mp4", "aac"},
}
EXTENSION_FOR = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
                 "image/heic": "heic", "audio/webm": "webm", "audio/ogg": "ogg",
                 "audio/mp4": "m4a", "audio/aac": "aac"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
               b"heif"}
REFUSED = [(b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "a ZIP archive"),
           (b"MZ", "a Windows program"), (b"\x7fELF", "a program"),
           (b"%PDF", "a PDF document"), (b"GIF8", "a GIF image"),
           (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
           (b"<", "a text or web page"), (b"{", "a text file")]
AVIF = "an AVIF image"


def content_type(head: bytes) -> str | None:
    """The accepted type these first bytes begin, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIF_BRANDS:
            return "image/heic"
        if brand in (b"avif", b"avis"):
            return None  # AVIF: a photo format Qorgau does not take (yet)
        # Any other ISO media file (M4A, mp42, isom, iso5 as Safari's recorder
        # writes, 3gp...) is the MP4 family the phones record audio in.
        return "audio/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML; Matroska and WebM both start so. The recorder writes WebM.
        return "audio/webm" if b"webm" in head or b"matroska" not in head else None
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if len(head) > 1 and head[0] == 0xFF and head[1] in (0xF1, 0xF9):
        return "audio/aac"
    return None


def kind_of(ctype: str) -> str:
    return "photo" if ctype in PHOTO_TYPES else "audio"


def describe(head: bytes) -> str:
    """A plain name for what a refused file is."""
    for magic, name in REFUSED:
        if head.startswith(magic):
            return name
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return AVIF
    ctype = content_type(head)
    if ctype:
        return label(ctype)
    return "a file of an unknown type"


def label(ctype: str) -> str:
    if ctype in PHOTO_TYPES:
        return f"a {PHOTO_TYPES[ctype]} image"
    return f"a {AUDIO_TYPES[ctype]} recording"


def accepted_list() -> str:
    return ("photos (JPEG, PNG, WebP, HEIC) and audio (WebM/Opus, Ogg, MP4/AAC)")


def extension(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""
