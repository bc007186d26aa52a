"""The working frame: the resolution at which a photo's protection is drawn and read.

A fixed native size stretched to every photo carries as much in 12 MP as in
128 px. Instead the working frame follows the photo: its long side is the
largest of ``LEVELS`` that does not exceed the photo's (at least the
smallest), aspect kept. Kodak's 768 x 512 is worked at its own size, a 12-MP
photo at 2048 px on the long side, which is what survives the usual path to a
viewer (a crop, downscaled to a 1080-2048 px long side, JPEG). The decoder
does not know the original size; it tries the levels in turn (``candidates``)
and the payload's checksum tells which one it was.
"""

from __future__ import annotations

LEVELS: tuple[int, ...] = (256, 384, 512, 768, 1024, 1536, 2048)


def working_level(width: int, height: int) -> int:
    """Long side of the working frame of a ``width`` x ``height`` photo."""
    long_side = max(width, height)
    fits = [lv for lv in LEVELS if lv <= long_side]
    return fits[-1] if fits else LEVELS[0]


def frame_size(level: int, aspect: float) -> tuple[int, int]:
    """(W, H) of the working frame with long side ``level`` and aspect W / H."""
    if aspect >= 1:
        return level, max(1, round(level / aspect))
    return max(1, round(level * aspect)), level


def working_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) of the working frame of a ``width`` x ``height`` photo."""
    return frame_size(working_level(width, height), width / height)


def smaller_levels(level: int) -> list[int]:
    """The levels below ``level``, nearest first (where an upscaled copy was worked)."""
    return [lv for lv in reversed(LEVELS) if lv < level]


def candidates(implied_long_side: float) -> list[int]:
    """Levels to try when decoding, most likely first: a received fragment that was
    not rescaled implies the original's long side exactly; downscaling makes it
    look smaller, so the next larger level comes next, then the next smaller one
    (an upscaled copy), then the other larger ones and the other smaller ones."""
    guess = working_level(round(implied_long_side), 1)
    larger = [lv for lv in LEVELS if lv > guess]
    smaller = smaller_levels(guess)
    return [guess, *larger[:1], *smaller[:1], *larger[1:], *smaller[1:]]
