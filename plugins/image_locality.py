"""ImageLocality: Score prefers nodes that already have the pod's images (containers and image
volumes).

As upstream v1.37: for each image source (init and app containers, then image volumes,
spec.volumes[].image.reference) whose normalized image the node reports in status.images, add
the image size scaled by the fraction of all nodes that have it (so an image present everywhere
does not pull pods together); clamp the sum to [23Mi, 1000Mi x image sources] and map it
linearly to [0, 100]. No normalization. Image volumes count in the image count as well as in
the sum (v1.36 counted them in the sum only, so a pod's image volume outscored the same image
as a container).

The spread factor depends on every node, so the plugin keeps a per-table count of nodes per
image, updated incrementally from the rows whose generation moved. A pod whose images some node
has is not row-local (a node gaining the image changes every other holder's score); a pod whose
images no node has scores 0 everywhere and is.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Handle, Scores, Status
from scheduler.model import PodInfo
from scheduler.snapshot import NodeTable, Rows

NAME = "ImageLocality"

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


@dataclass
class _ImageIndex:
    """How many nodes report each image, as of `seen` (the row generations last read)."""

    seen: npt.NDArray[np.int64]
    images: list[dict[str, int] | None] = field(default_factory=list)  # per row
    nodes_with: dict[str, int] = field(default_factory=dict)

    def refresh(self, table: NodeTable) -> None:
        generation = table.generation
        if self.seen.size != generation.size:  # the table grew
            grown = np.full(generation.size, -1, dtype=np.int64)
            grown[: self.seen.size] = self.seen
            self.seen = grown
            self.images.extend([None] * (generation.size - len(self.images)))
        for row in np.flatnonzero(generation != self.seen).tolist():
            node = table.nodes[row]
            new = node.images if node is not None and table.alive[row] else None
            old = self.images[row]
            if new is not old:
                for name in old or ():
                    self.nodes_with[name] -= 1
                    if not self.nodes_with[name]:
                        del self.nodes_with[name]
                for name in new or ():
                    self.nodes_with[name] = self.nodes_with.get(name, 0) + 1
                self.images[row] = new
        self.seen = generation.copy()


class ImageLocality:
    name = NAME

    def __init__(self) -> None:
        self._indexes: weakref.WeakKeyDictionary[NodeTable, _ImageIndex] = (
            weakref.WeakKeyDictionary()
        )
        self._last: _ImageIndex | None = None  # the index of the table scored last

    def row_local_for(self, pod: PodInfo) -> bool:
        """Row-local unless some node (as last seen) has one of the pod's images. Before any
        table was seen the answer is no: the first pod takes the one-by-one path."""
        if not pod.images:
            return True
        if self._last is None:
            return False
        return not any(image in self._last.nodes_with for image in pod.images)

    def pre_score(
        self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows
    ) -> Status | None:
        """Skip when no node has any of the pod's images: every score would be 0."""
        if not pod.images:
            return SKIP
        index = self._index(table)
        return None if any(image in index.nodes_with for image in pod.images) else SKIP

    def score(self, state: CycleState, pod: PodInfo, table: NodeTable, rows: Rows) -> Scores:
        index = self._index(table)
        total = max(len(table), 1)
        sums = np.zeros(rows.size, dtype=np.int64)
        present = [i for i in dict.fromkeys(pod.images) if i in index.nodes_with]
        if present:
            per_source = {i: pod.images.count(i) for i in present}
            for k, row in enumerate(rows.tolist()):
                images = table.node(row).images
                for image in present:
                    size = images.get(image)
                    if size is not None:
                        # int64(float64(size) * spread), truncated as Go converts.
                        scaled = int(float(size) * (index.nodes_with[image] / total))
                        sums[k] += scaled * per_source[image]
        return calculate_priority(sums, len(pod.images))

    def normalize(self, scores: Scores) -> Scores:
        return scores

    def _index(self, table: NodeTable) -> _ImageIndex:
        index = self._indexes.get(table)
        if index is None:
            index = _ImageIndex(np.full(table.generation.size, -1, dtype=np.int64))
            index.images = [None] * table.generation.size
            self._indexes[table] = index
        index.refresh(table)
        self._last = index
        return index


def calculate_priority(sums: Scores, image_count: int) -> Scores:
    """Clamp each sum to [23Mi, 1000Mi x image sources] and scale it linearly to [0, 100]."""
    top = MAX_CONTAINER_THRESHOLD * image_count
    if top <= MIN_THRESHOLD:
        return np.zeros(sums.size, dtype=np.int64)
    clamped = np.clip(sums, MIN_THRESHOLD, top)
    out: Scores = MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) // (top - MIN_THRESHOLD)
    return out


def new(args: Mapping[str, Any], handle: Handle) -> ImageLocality:
    return ImageLocality()
