"""Re-encode one image in a child process (run by consult.services.sanitise, never imported).

    python -I _sanitise_image.py SOURCE OUTPUT MAX_PIXELS

Run by path with `-I`, so it imports nothing of madoguchi and no environment variable changes
it; the parent sets its memory and CPU limits. Only the pixels of the first frame leave: a new
image is built from them, so EXIF (位置情報 included), XMP, ICC profiles, comments and any
trailing bytes stay behind. A JPEG stays a JPEG (quality 90), anything else becomes a PNG.
Prints one line of JSON ({"format", "width", "height"}); exit 4 is a decompression bomb,
exit 3 a format not offered, anything else a failure the parent quarantines.
"""

import json
import sys
import warnings

from PIL import Image, ImageOps

ALLOWED = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"}


def main(source: str, output: str, max_pixels: int) -> int:
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        with Image.open(source, formats=sorted(ALLOWED)) as image:
            if image.format not in ALLOWED:
                return 3
            width, height = image.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                return 4
            source_format = image.format
            image.seek(0)
            image.load()
            # Turned as the camera meant (EXIF Orientation), then the EXIF itself is left behind.
            turned = ImageOps.exif_transpose(image)
            if source_format == "JPEG":
                pixels = turned.convert("RGB")
            elif turned.mode in ("RGBA", "LA") or "transparency" in turned.info:
                pixels = turned.convert("RGBA")
            else:
                pixels = turned.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return 4
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    if source_format == "JPEG":
        clean.save(output, "JPEG", quality=90, optimize=True)
        kind = "JPEG"
    else:
        clean.save(output, "PNG", optimize=False)
        kind = "PNG"
    print(json.dumps({"format": kind, "width": clean.width, "height": clean.height}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
