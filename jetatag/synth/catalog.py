"""The synthetic catalogue: artists, albums, tracks and 29-s segments laid out like MTAT's.

Like MTAT, every album sits in one of the folders ``0``-``f`` and each track contributes a few non-adjacent
29-second segments (``...-30-59.mp3``). Folders get equal shares of the clips, so the standard folder split
gives 12 train / 1 valid / 3 test parts. Clip ids increase through the annotations file with small gaps,
ordered as MTAT's are: by track number across albums, then by segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jetatag.mtat import FOLDERS

_WORDS = (
    "amber", "april", "autumn", "blue", "bright", "broken", "candle", "canyon", "castle", "cedar", "circle", "cloud",
    "copper", "coral", "crystal", "dance", "dawn", "delta", "desert", "distant", "dream", "dust", "echo", "ember",
    "evening", "falcon", "field", "fire", "forest", "garden", "ghost", "glass", "golden", "harbor", "harvest",
    "hollow", "horizon", "island", "ivory", "jade", "journey", "lantern", "light", "lotus", "lunar", "maple",
    "meadow", "midnight", "mirror", "mist", "morning", "mountain", "night", "north", "ocean", "orchid", "paper",
    "pearl", "prairie", "quiet", "rain", "raven", "river", "road", "rose", "ruby", "sail", "salt", "shadow",
    "silver", "sky", "smoke", "snow", "solar", "song", "spring", "star", "stone", "storm", "summer", "sun",
    "thunder", "tide", "valley", "velvet", "violet", "wave", "west", "willow", "wind", "winter", "wolf",
)  # fmt: skip

SEGMENT_SECONDS = 29
"""MTAT cuts tracks into ~29-s segments named ``<start>-<end>``: 0-29, 30-59, 59-88, 88-117, ..."""


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the mirror: where it sits in the catalogue and the files' metadata."""

    index: int  # row of annotations_final.csv (0-based), also the clip's RNG stream
    clip_id: int
    track: int  # global track index, the track's RNG stream
    folder: str
    artist: str
    album: str
    title: str
    track_number: int
    segment_start: int
    segment_end: int
    mp3_path: str


def _name(rng: np.random.Generator, n_words: tuple[int, int]) -> str:
    """A display name of random words, e.g. ``"Silver Harbor Song"``."""
    k = int(rng.integers(n_words[0], n_words[1] + 1))
    return " ".join(str(w).capitalize() for w in rng.choice(_WORDS, size=k, replace=False))


def slug(name: str) -> str:
    """File-name form of a display name, as MTAT writes them (``Silver Harbor`` -> ``silver_harbor``)."""
    return name.lower().replace(" ", "_")


def _segment_bounds(k: int) -> tuple[int, int]:
    """Start and end second of the ``k``-th 29-s segment of a track, as MTAT names them."""
    start = 0 if k == 0 else SEGMENT_SECONDS * k + 1
    return start, start + SEGMENT_SECONDS


def build_catalog(n_clips: int, seed: int) -> list[ClipSpec]:
    """Lay ``n_clips`` clips out over folders, albums, tracks and segments; sorted by clip id."""
    if n_clips < len(FOLDERS):
        raise ValueError(f"n_clips={n_clips}: need at least one clip per folder ({len(FOLDERS)})")
    rng = np.random.default_rng([seed, 2])
    per_folder = [n_clips // len(FOLDERS) + (f < n_clips % len(FOLDERS)) for f in range(len(FOLDERS))]
    rows = []  # (track_number, album_index, segment_k, track_index, folder, artist, album, title)
    album_index = track_index = 0
    used: set[tuple[str, str]] = set()
    for folder, size in zip(FOLDERS, per_folder, strict=True):
        n_albums = max(1, round(size / 60))
        albums = []
        while len(albums) < n_albums:  # (artist, album) pairs are unique, so file names are too
            pair = (_name(rng, (1, 3)), _name(rng, (2, 3)))
            if pair not in used:
                used.add(pair)
                albums.append(pair)
        track_numbers = [0] * n_albums
        left = size
        while left > 0:
            a = track_index % n_albums
            track_numbers[a] += 1
            n_seg = min(left, int(rng.integers(1, 5)))  # 1-4 segments per track (MTAT: ~5; fewer = more variety)
            total = n_seg + int(rng.integers(0, 4))
            segments = np.sort(rng.choice(total, size=n_seg, replace=False))
            title = _name(rng, (1, 4))
            for k in segments:
                rows.append((track_numbers[a], album_index + a, int(k), track_index, folder, *albums[a], title))
            track_index += 1
            left -= n_seg
        album_index += n_albums
    rows.sort(key=lambda r: r[:3])
    clip_ids = np.cumsum(rng.integers(1, 4, size=len(rows))) + 1
    specs = []
    for i, (number, _, k, track, folder, artist, album, title) in enumerate(rows):
        start, end = _segment_bounds(k)
        name = f"{slug(artist)}-{slug(album)}-{number:02d}-{slug(title)}-{start}-{end}.mp3"
        specs.append(
            ClipSpec(
                index=i,
                clip_id=int(clip_ids[i]),
                track=track,
                folder=folder,
                artist=artist,
                album=album,
                title=title,
                track_number=number,
                segment_start=start,
                segment_end=end,
                mp3_path=f"{folder}/{name}",
            )
        )
    return specs
