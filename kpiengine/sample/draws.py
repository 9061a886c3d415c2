"""Random streams and vectorized draws shared by the generators."""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str, part: int = 0, shard: int = 0) -> np.random.Generator:
    """The random stream of one table (or one part of it) for a seed.

    Each table draws from its own stream, so changing how one table is generated leaves
    every other table as it was, and a table generated in parts gives the same parts.
    Shard 0 (the whole company up to :data:`~kpiengine.sample.generate.SHARD_ROWS` deals)
    keeps the streams the generator always had, so small datasets stay byte-identical;
    every further shard of a big company draws from streams of its own.
    """
    key = [seed, zlib.crc32(name.encode()), part]
    return np.random.default_rng(key if shard == 0 else [*key, shard])


def choose_rows(rng: np.random.Generator, table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each row, an index drawn with the probabilities ``table[group[row]]``."""
    draw = rng.random(len(group))
    cumulative = np.cumsum(table, axis=1)
    pick = np.zeros(len(group), np.int64)
    for g in range(len(table)):
        rows = np.flatnonzero(group == g)
        found = np.searchsorted(cumulative[g], draw[rows] * cumulative[g, -1], side="right")
        pick[rows] = np.minimum(found, table.shape[1] - 1)
    return pick
