"""Metrics on tiny models and synthetic maps with exact, hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cadcam_numeric.metrics import box_from_map, deletion_insertion, iou, localisation_hits, pointing_game


def sum_model(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Score = sum of all pixels."""
    return x.flatten(1).sum(1)


def test_deletion_and_insertion_auc_by_hand():
    """2×2 image (4, 3, 2, 1), map = image, zero baseline, one pixel per step.
    Deletion: 10, 6, 3, 1, 0 -> AUC = (10/2 + 6 + 3 + 1 + 0/2) / 4 = 3.75.
    Insertion: 0, 4, 7, 9, 10 -> AUC = (0/2 + 4 + 7 + 9 + 10/2) / 4 = 6.25."""
    img = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]], dtype=torch.float64)
    c = deletion_insertion(sum_model, img, img[:, 0], torch.zeros_like(img), steps=4)
    assert c.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert c.deletion[0].tolist() == [10.0, 6.0, 3.0, 1.0, 0.0]
    assert c.insertion[0].tolist() == [0.0, 4.0, 7.0, 9.0, 10.0]
    assert c.deletion_auc.item() == 3.75 and c.insertion_auc.item() == 6.25


def test_reversed_map_gives_the_opposite_curves_and_ties_are_stable():
    img = torch.tensor([[[[4.0, 3.0], [2.0, 1.0]]]], dtype=torch.float64)
    c = deletion_insertion(sum_model, img, -img[:, 0], torch.zeros_like(img), steps=4)
    assert c.deletion[0].tolist() == [10.0, 9.0, 7.0, 4.0, 0.0]  # deletes 1, 2, 3, 4
    flat = deletion_insertion(sum_model, img, torch.zeros(1, 2, 2, dtype=torch.float64), torch.zeros_like(img), steps=4)
    assert flat.deletion[0].tolist() == [10.0, 6.0, 3.0, 1.0, 0.0]  # ties: pixel index order
    two = deletion_insertion(sum_model, img, img[:, 0], torch.ones_like(img), steps=2)  # a non-zero baseline
    assert two.deletion[0].tolist() == [10.0, 5.0, 4.0] and two.insertion[0].tolist() == [4.0, 9.0, 10.0]


def test_pointing_game():
    maps = torch.zeros(3, 5, 5)
    maps[0, 2, 3] = 1.0  # inside (x=3, y=2)
    maps[1, 4, 0] = 1.0  # outside
    maps[2, 1, 1] = 1.0  # on the box's first row/column: inside
    boxes = torch.tensor([[1, 1, 4, 4]] * 3)
    assert pointing_game(maps, boxes).tolist() == [True, False, True]
    edge = torch.zeros(1, 5, 5)
    edge[0, 4, 4] = 1.0  # x1, y1 are exclusive
    assert pointing_game(edge, torch.tensor([[0, 0, 4, 4]])).tolist() == [False]


def test_box_from_map_and_iou():
    m = np.zeros((10, 10))
    m[2:5, 3:7] = 1.0  # the largest segment: 3 rows x 4 cols
    m[8, 8] = 0.9  # a smaller segment above the threshold
    assert box_from_map(m, 0.15) == (3, 2, 7, 5)
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0 and iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    gauss = np.exp(-(((np.arange(20)[:, None] - 10) ** 2 + (np.arange(20)[None, :] - 6) ** 2) / 8.0))
    x0, y0, x1, y1 = box_from_map(gauss, 0.5)  # the disc exp(-r²/8) >= 0.5: r <= 2.35
    assert (x0, y0, x1, y1) == (4, 8, 9, 13)
    ious, hits = localisation_hits(
        torch.from_numpy(np.stack([m, gauss[:10, :10]])), torch.tensor([[3, 2, 7, 5], [0, 0, 2, 2]])
    )
    assert ious[0] == 1.0 and hits.tolist() == [True, False]


def test_stratified_protocol_by_hand():
    from cadcam_numeric.errors import CadcamInputError
    from cadcam_numeric.metrics import stratified_by_accuracy

    correct = np.array([True] * 20 + [False] * 20)
    values = np.where(correct, 2.0, 99.0)  # misclassified images must never count
    acc, metric, auc = stratified_by_accuracy(values, correct, subset_size=10, bins=10)
    assert acc.tolist() == [i / 10 for i in range(1, 11)]
    assert metric.tolist() == [2.0] * 10
    assert auc == pytest.approx(2.0 * 0.9)  # constant 2 over [0.1, 1]
    ramp = np.where(correct, np.arange(40), 0.0)
    _, m1, _ = stratified_by_accuracy(ramp, correct, 10, 10, seed=1)
    _, m2, _ = stratified_by_accuracy(ramp, correct, 10, 10, seed=1)
    assert np.array_equal(m1, m2) and m1.min() >= 0 and m1.max() <= 19
    with pytest.raises(CadcamInputError, match="needs at least 10 correct and 9 wrong"):
        stratified_by_accuracy(np.ones(5), np.ones(5, dtype=bool))


def test_deletion_insertion_is_the_same_whatever_memory_it_may_use(monkeypatch):
    """The perturbed images are built a group of images at a time (metrics.STACK_BYTES); with no
    budget (the smallest group: the images one chunk of batch_size touches) the same perturbed
    images are scored, so the curves are equal bit for
    bit (the score reads pixels without a reduction: a matmul's last bits depend on its operand's
    alignment in memory, which grouping changes)."""
    import cadcam_numeric.metrics.curves as metrics

    torch.manual_seed(0)
    images, baseline = torch.rand(7, 3, 5, 5), torch.zeros(7, 3, 5, 5)
    saliency = torch.rand(7, 5, 5)

    def score(x, index):
        return 2 * x[:, 0, 0, 0] + x[:, 1, 2, 3] - x[:, 2, 4, 1] + index.to(x.dtype)

    whole = metrics.deletion_insertion(score, images, saliency, baseline, steps=4, batch_size=6)
    monkeypatch.setattr(metrics, "STACK_BYTES", 1)
    grouped = metrics.deletion_insertion(score, images, saliency, baseline, steps=4, batch_size=6)
    for name in ("deletion", "insertion", "deletion_auc", "insertion_auc"):
        assert torch.equal(getattr(whole, name), getattr(grouped, name)), name
    # every point is the score of the image with its k most salient pixels swapped, k = round(j·25/4)
    order = torch.argsort(saliency[2].flatten(), descending=True, stable=True)
    removed = images[2].clone().reshape(3, -1)
    removed[:, order[:12]] = 0  # step 2 of 4: 12.5 → 12 pixels (round half to even)
    assert torch.allclose(whole.deletion[2, 2], score(removed.reshape(1, 3, 5, 5), torch.tensor([2]))[0])
