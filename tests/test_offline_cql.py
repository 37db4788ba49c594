"""CQL's penalty and the fitted-Q losses (chapter 2): hand-computed values, gradients, invariants, validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rl4llm.offline.cql import bellman_loss, cql_loss, cql_penalty


def test_penalty_by_hand():
    q = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    a = torch.tensor([0, 1])
    # row 1: log(1 + 3) - 0 = log 4; row 2: (1 + log 2) - 1 = log 2; mean = 1.5 log 2
    assert cql_penalty(q, a).item() == pytest.approx(1.5 * math.log(2.0))


def test_penalty_gradient_pushes_unseen_down_and_logged_up():
    q = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]], requires_grad=True)
    cql_penalty(q, torch.tensor([0, 1])).backward()
    # d/dQ = (softmax(Q) - onehot(a)) / B
    expected = torch.tensor([[0.25 - 1.0, 0.75], [0.5, 0.5 - 1.0]]) / 2
    torch.testing.assert_close(q.grad, expected)


def test_penalty_invariants():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(64, 5, generator=gen) * 3
    a = torch.randint(5, (64,), generator=gen)
    p = cql_penalty(q, a)
    assert p.item() >= 0
    # it is the cross-entropy of the logged actions under softmax(Q): a BC loss with Q as logits
    torch.testing.assert_close(p, F.cross_entropy(q, a))
    # shifting all of a state's values does not change it: it only sees differences between actions
    torch.testing.assert_close(cql_penalty(q + 7.0, a), p)
    # all actions equal: log A
    assert cql_penalty(torch.zeros(3, 5), torch.tensor([0, 1, 4])).item() == pytest.approx(math.log(5))


def test_bellman_and_cql_loss_by_hand():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = torch.tensor([1, 0])
    y = torch.tensor([0.0, 1.0])
    # 0.5 * mean((2 - 0)^2, (3 - 1)^2) = 0.5 * 4 = 2
    assert bellman_loss(q, a, y).item() == pytest.approx(2.0)
    loss0, parts = cql_loss(q, a, y, alpha=0.0)
    assert loss0.item() == pytest.approx(2.0) and parts["bellman_loss"] == pytest.approx(2.0)
    loss2, parts = cql_loss(q, a, y, alpha=2.0)
    assert loss2.item() == pytest.approx(2.0 + 2.0 * cql_penalty(q, a).item())
    assert parts["cql_penalty"] == pytest.approx(cql_penalty(q, a).item())


def test_bellman_loss_does_not_differentiate_through_targets():
    q = torch.tensor([[1.0, 2.0]], requires_grad=True)
    y = torch.tensor([0.0], requires_grad=True)
    bellman_loss(q, torch.tensor([0]), y).backward()
    assert y.grad is None
    torch.testing.assert_close(q.grad, torch.tensor([[1.0, 0.0]]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cql_penalty(torch.zeros(3), torch.zeros(3, dtype=torch.long)), "q_values must be a \\[B, A\\]"),
        (
            lambda: cql_penalty(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long)),
            "actions must be a \\[B\\] = \\[3\\]",
        ),
        (lambda: bellman_loss(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(2)), "targets"),
        (lambda: cql_loss(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(3), -1.0), "alpha"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
