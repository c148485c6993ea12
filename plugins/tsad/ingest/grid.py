"""The day's regular grid, filled batch by batch: dedup, snapping and short-gap filling in numpy.

Memory is the grid itself (float64, one row per channel) plus one byte per cell: a reading on a
grid point is written into its cell as its batch arrives; the rare reading that repeats a cell
(a duplicate) or that lies between grid points is kept aside (about 30 bytes) and settled at the
end. The rules are those tsad always applied to the day's pandas frame:

- duplicates are readings of one channel (long rows) or rows (wide) at the same instant; the
  policy keeps the mean of their non-NaN values, the first or the last in row order, or refuses;
- snapping: each grid point takes the readings of the source instant nearest to it within half a
  step (a later instant wins a tie), where instants are those of any channel's row (long: any
  configured channel's), so an instant on the grid point always wins;
- runs of at most ``max_fill_steps`` missing points are forward-filled; a run at the day's start
  has nothing to carry and stays missing.
"""

from __future__ import annotations

import numpy as np

from tsad.runs import runs


class Grid:
    """Grid points ``start + k * step`` (microseconds, UTC) before ``end`` x ``channels``."""

    def __init__(self, start: int, end: int, step: int, channels: int, long: bool) -> None:
        self.start, self.step, self.long, self.c = start, step, long, channels
        self.n = max(0, -(-(end - start) // step))
        self.values = np.full((channels, self.n), np.nan)  # [channel, grid point]
        self.seen = np.zeros(channels * self.n if long else self.n, dtype=bool)
        self.exact = np.zeros(self.n, dtype=bool)  # some row's instant is this grid point
        self._repeat: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._between: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, stamps: np.ndarray, values: np.ndarray, rows: np.ndarray,
            codes: np.ndarray | None = None) -> None:
        """Readings at ``stamps`` (us, inside the day): ``values [m]`` of channels ``codes``
        (long) or ``values [m, channels]`` (wide); ``rows`` number them in source order."""
        codes = (np.zeros(len(stamps), dtype=np.int64) if codes is None
                 else codes.astype(np.int64, copy=False))
        slot, remainder = np.divmod(stamps - self.start, self.step)
        on = remainder == 0
        if not on.all():
            off = ~on
            self._between.append((stamps[off], codes[off], values[off], rows[off]))
            slot, codes, values, rows = slot[on], codes[on], values[on], rows[on]
        if not len(slot):
            return
        self.exact[slot] = True
        cells = codes * self.n + slot if self.long else slot
        fresh = ~self.seen[cells]
        if fresh.all() and not _repeats(slot * self.c + codes if self.long else slot):
            self._write(cells, values)
            self.seen[cells] = True
            return
        first = np.zeros(len(cells), dtype=bool)
        first[np.unique(cells, return_index=True)[1]] = True
        first &= fresh  # the cell's first reading in row order is written, the others kept
        self._write(cells[first], values[first])
        self.seen[cells[first]] = True
        self._repeat.append((cells[~first], values[~first], rows[~first]))

    def _write(self, cells: np.ndarray, values: np.ndarray) -> None:
        if self.long:
            self.values.reshape(-1)[cells] = values
        else:
            self.values[:, cells] = values.T

    def duplicates(self) -> tuple[int, tuple[int, int] | None]:
        """How many readings repeat an earlier one, and the first of them in row order
        (its instant in us, its channel code; channel -1 for wide rows)."""
        count, first, first_row = 0, None, None
        if self._repeat:
            cells, _, rows = (np.concatenate(p) for p in zip(*self._repeat, strict=True))
            count += len(cells)
            i = int(np.argmin(rows))
            slot = int(cells[i] % self.n) if self.long else int(cells[i])
            code = int(cells[i] // self.n) if self.long else -1
            first, first_row = (self.start + slot * self.step, code), int(rows[i])
        if self._between:
            stamps, codes, _, rows = self._between_rows()
            keys = self._keys(stamps, codes)
            unique, index = np.unique(keys, return_index=True)
            count += len(keys) - len(unique)
            later = np.ones(len(keys), dtype=bool)
            later[index] = False
            if later.any():
                i = int(np.flatnonzero(later)[np.argmin(rows[later])])
                if first_row is None or rows[i] < first_row:
                    first = (int(stamps[i]), int(codes[i]) if self.long else -1)
        return count, first

    def settle(self, policy: str) -> None:
        """Apply the duplicates policy, then snap the readings between grid points."""
        if self._repeat:
            cells, values, rows = (np.concatenate(p) for p in zip(*self._repeat, strict=True))
            self._merge(cells, values, policy)
        if self._between:
            self._snap(policy)
        self._repeat, self._between = [], []

    def _merge(self, cells: np.ndarray, values: np.ndarray, policy: str) -> None:
        """Repeats of written cells (in row order) folded into them by ``policy``."""
        if policy == "first":
            return
        if policy == "last":
            backwards = cells[::-1]
            unique, index = np.unique(backwards, return_index=True)
            self._write(unique, values[::-1][index])
            return
        unique, inverse = np.unique(cells, return_inverse=True)
        lead = self.values.reshape(-1)[unique] if self.long else self.values[:, unique].T
        self._write(unique, _nanmean(lead, values, inverse))

    def _between_rows(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(p) for p in zip(*self._between, strict=True))

    def _keys(self, stamps: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """One int64 per (instant, channel): a day in us times the channels fits with room."""
        return (stamps - self.start) * self.c + codes if self.long else stamps

    def _snap(self, policy: str) -> None:
        """Readings between grid points: per (instant, channel) by ``policy``, then onto the grid
        points without a reading of their own whose nearest instant they are."""
        stamps, codes, values, rows = self._between_rows()
        keys = self._keys(stamps, codes)
        if policy == "last":
            unique, index = np.unique(keys[::-1], return_index=True)
            index = len(keys) - 1 - index
            stamp, code, value = stamps[index], codes[index], values[index]
        else:
            unique, index, inverse = np.unique(keys, return_index=True, return_inverse=True)
            stamp, code, value = stamps[index], codes[index], values[index]
            if policy == "mean":
                value = _nanmean(None, values, inverse, len(unique))
        instants = np.unique(stamp)
        nearest = self._nearest(instants)  # grid point -> index into instants, or -1
        floor = (instants - self.start) // self.step
        chosen = np.searchsorted(instants, stamp)
        for candidate in (floor[chosen], floor[chosen] + 1):  # an instant serves at most two
            ok = (candidate >= 0) & (candidate < self.n)
            hit = ok & (nearest[np.clip(candidate, 0, self.n - 1)] == chosen)
            if self.long:
                self.values[code[hit], candidate[hit]] = value[hit]
            else:
                self.values[:, candidate[hit]] = value[hit].T

    def _nearest(self, instants: np.ndarray) -> np.ndarray:
        """pandas' ``reindex(method='nearest', tolerance=step / 2)`` of the grid points that have
        no instant of their own onto ``instants`` (sorted, none on a grid point)."""
        points = self.start + np.arange(self.n, dtype=np.int64) * self.step
        right = np.searchsorted(instants, points)
        left = right - 1
        big = np.iinfo(np.int64).max
        left_gap = np.where(left >= 0, points - instants[np.clip(left, 0, None)], big)
        right_gap = np.where(right < len(instants),
                             instants[np.clip(right, None, len(instants) - 1)] - points, big)
        pick = np.where(left_gap < right_gap, left, right)
        gap = np.minimum(left_gap, right_gap)
        return np.where((gap <= self.step // 2) & ~self.exact, pick, -1)

    def masked_windows(self, length: int, stride: int) -> int:
        """How many windows scoring will skip because they hold a missing point: the windows of
        ``tsad.windows.window_starts`` (every ``stride`` points, and one flush with the end),
        counted here without importing the scoring code (it loads torch)."""
        if self.n < length:
            return 0
        starts = np.arange(0, self.n - length + 1, stride, dtype=np.int64)
        if starts[-1] != self.n - length:
            starts = np.append(starts, self.n - length)
        bad = np.zeros(self.n, dtype=bool)
        for row in self.values:
            bad |= np.isnan(row)
        prefix = np.concatenate(([0], np.cumsum(bad)))
        return int(((prefix[starts + length] - prefix[starts]) > 0).sum())

    def fill(self, limit: int) -> tuple[int, int]:
        """Forward-fill short gaps in place; (missing cells before, missing cells after)."""
        missing = after = 0
        for row in self.values:
            missing += _fill_short_gaps(row, limit)
            after += int(np.isnan(row).sum())
        return missing, after


def _repeats(keys: np.ndarray) -> bool:
    """Whether ``keys`` holds a value twice: a scratch table over their span when that is small
    (a batch of rows in time order), a sort otherwise."""
    if len(keys) < 2:
        return False
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    if span <= 4 * len(keys) + 4096:
        position = np.arange(len(keys), dtype=np.int64)
        table = np.full(span, -1, dtype=np.int64)
        table[keys - low] = position
        return bool((table[keys - low] != position).any())  # a later row took a cell
    ordered = np.sort(keys)
    return bool((ordered[1:] == ordered[:-1]).any())


def _nanmean(lead: np.ndarray | None, values: np.ndarray, inverse: np.ndarray,
             groups: int | None = None) -> np.ndarray:
    """Per group (``inverse``) the mean of the non-NaN values, with each group's ``lead`` value
    (its first reading) counted in; NaN where a group has none."""
    groups = groups if groups is not None else len(lead)  # type: ignore[arg-type]
    wide = values.ndim == 2
    columns = values.shape[1] if wide else 1
    flat = values.reshape(len(values), columns)
    out = np.empty((groups, columns))
    for j in range(columns):
        column = flat[:, j]
        known = ~np.isnan(column)
        total = np.bincount(inverse, weights=np.where(known, column, 0.0), minlength=groups)
        count = np.bincount(inverse, weights=known, minlength=groups)
        if lead is not None:
            first = lead.reshape(groups, columns)[:, j]
            total = np.where(np.isnan(first), 0.0, first) + total
            count = count + ~np.isnan(first)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(count > 0, total / count, np.nan)
    return out if wide else out[:, 0]


def _fill_short_gaps(row: np.ndarray, limit: int) -> int:
    """Carry the last reading over NaN runs of at most ``limit`` points (in place); returns how
    many were NaN before."""
    gaps = np.isnan(row)
    missing = int(gaps.sum())
    if not missing or limit <= 0:
        return missing
    starts, ends = runs(gaps)
    short = (ends - starts <= limit) & (starts > 0)
    starts, lengths = starts[short], (ends - starts)[short]
    if len(starts):
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        row[np.repeat(starts, lengths) + offsets] = row[np.repeat(starts - 1, lengths)]
    return missing
