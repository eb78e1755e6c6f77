"""The built-in demo corpus: SYNTHETIC lyrics, generated from a fixed seed.

It exists only so that ``studybench demo`` and the tests run anywhere in
seconds; no number measured on it says anything about real music. It is written
in the Kaggle train.csv schema (``Artist, Song, Genre, Language, Lyrics``) with
raw multi-line lyrics, punctuation and capitals, so the real readers and the
real cleaning run on it. Like real lyrics data, genre is mostly a property of
the artist and each artist has pet words, so a random song-level split scores
higher than an artist-grouped one: the leakage the demo is meant to show.

The shipped file ``demo_data/lyrics_demo.csv.gz`` is the output of
``python -m studybench.data.demo`` (a test checks they agree).
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

GENRES = {  # genre -> (share of artists, words that lean towards it)
    "Rock": (0.32, "guitar loud road highway fire thunder wild rebel engine scream steel storm "
                   "burn freedom electric amp drum crash rain rolling stone"),
    "Pop": (0.28, "dance tonight party shine baby heart kiss crush summer sweet forever glitter "
                  "radio star dream body move feeling lights"),
    "Hip-Hop": (0.16, "street hustle money flow rhyme block crew beat mic cash game hood grind "
                      "real boss chain city verse track"),
    "Country": (0.14, "truck whiskey porch dirt farm boots creek tractor county fiddle barn dust "
                      "cowboy river hometown pickup fields church"),
    "Jazz": (0.10, "blue moon smoky saxophone swing velvet midnight cocktail lounge melody trumpet "
                   "rhythm bourbon cafe piano satin serenade"),
}
COMMON = ("love time night life world heart day away feel know want need say go come see take "
          "make never always tell right light eyes hand mind home way long little old young "
          "girl boy man woman friend fire cold warm hold run fall rise cry smile").split()
FILLER = "the a and i you me my we it is to of in on for with but so oh yeah".split()
SYLLABLES = "ka lo mi ra zu ven tor sil bra quo fen dri lux mor pan vel zy tra".split()


def generate(seed: int = 0, n_artists: int = 90, songs: tuple[int, int] = (8, 26)) -> pd.DataFrame:
    """Generate the demo corpus (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    names = list(GENRES)
    shares = np.array([GENRES[g][0] for g in names])
    rows = []
    for a in range(n_artists):
        genre = names[rng.choice(len(names), p=shares / shares.sum())]
        # Each artist favours its own few of the genre's words: unseen artists are harder.
        pool = list(rng.choice(GENRES[genre][1].split(), 7, replace=False))
        # Each artist's pet words: invented, so only the artist (not the genre) predicts them.
        pets = ["".join(rng.choice(SYLLABLES, 3)) for _ in range(4)]
        artist = f"The {''.join(rng.choice(SYLLABLES, 2)).title()} {['Band', 'Crew', 'Trio', 'Project'][a % 4]}"
        for s in range(int(rng.integers(*songs))):
            lines = []
            for _ in range(int(rng.integers(6, 14))):
                words = []
                for _ in range(int(rng.integers(4, 9))):
                    u = rng.random()
                    other = GENRES[names[rng.integers(len(names))]][1].split()
                    bag = pool if u < 0.05 else other if u < 0.09 else pets if u < 0.14 else \
                        FILLER if u < 0.45 else COMMON
                    words.append(str(rng.choice(bag)))
                line = " ".join(words)
                lines.append(line[0].upper() + line[1:] + str(rng.choice(["", ",", "!", "..."])))
            rows.append({"Artist": artist, "Song": f"Song {a:02d}-{s:02d}", "Genre": genre,
                         "Language": "en", "Lyrics": "\n".join(lines)})
    return pd.DataFrame(rows)


def demo_bytes(seed: int = 0) -> bytes:
    """The gzip-compressed CSV as shipped (mtime 0, so the bytes are reproducible)."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(generate(seed).to_csv(index=False).encode("utf-8"))
    return raw.getvalue()


def demo_lyrics_path() -> Path:
    """Path of the shipped demo corpus."""
    return Path(str(resources.files("studybench") / "demo_data" / "lyrics_demo.csv.gz"))


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "demo_data" / "lyrics_demo.csv.gz"
    target.write_bytes(demo_bytes())
    print(f"wrote {target}")
