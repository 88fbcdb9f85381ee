import math

import torch
import torch.nn.functional as F

from cmr_search.model.training.loss import ClipLoss, NormSoftmaxLoss, sim_matrix


def test_clip_loss_init_clamp_and_symmetry():
    loss = ClipLoss()
    assert math.isclose(loss.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    with torch.no_grad():
        loss.logit_scale.fill_(10.0)
    assert loss.scale().item() == 100.0
    v, t = torch.randn(6, 8), torch.randn(6, 8)
    assert torch.allclose(loss(v, t), loss(t, v))
    logits = 100 * sim_matrix(v, t)
    i = torch.arange(6)
    ref = (F.cross_entropy(logits, i) + F.cross_entropy(logits.t(), i)) / 2
    assert torch.allclose(loss(v, t), ref)


def test_clip_loss_aligned_pairs_are_cheaper_and_temperature_learns():
    loss = ClipLoss()
    v = torch.randn(8, 16)
    assert loss(v, v + 0.01 * torch.randn(8, 16)) < loss(v, torch.randn(8, 16))
    loss(v, v).backward()
    assert loss.logit_scale.grad is not None


def test_groups_spread_the_target_over_the_group():
    loss = ClipLoss()
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    groups = torch.tensor([7, 7, 1, 2])                       # e.g. two studies with the same diagnosis
    target = torch.tensor([[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, 1., 0], [0, 0, 0, 1.]])
    logits = loss.scale() * sim_matrix(v, t)
    ref = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    assert torch.allclose(loss(v, t, groups), ref) and not torch.allclose(loss(v, t), ref)


def test_published_loss_is_the_sum_of_both_directions():
    v, t = torch.randn(5, 8), torch.randn(5, 8)
    s = sim_matrix(t, v) / 0.05
    i = torch.arange(5)
    ref = F.cross_entropy(s, i) + F.cross_entropy(s.t(), i)
    assert torch.allclose(NormSoftmaxLoss()(v, t), ref)
