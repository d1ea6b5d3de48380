import math

import pytest
import torch

from pwm.utils.math import BinSupport, soft_ce, symexp, symlog, two_hot, two_hot_inv

SUPPORT = BinSupport(101, -10.0, 10.0)


def test_symlog_symexp_inverse():
    x = torch.tensor([-1e4, -3.5, -1e-3, 0.0, 0.25, 7.0, 2e5])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-6)
    assert symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)


def test_two_hot_hand_computed():
    # symlog(e^0.3 - 1) = 0.3 -> position (0.3 + 10) / 0.2 = 51.5 -> bins 51 and 52 with weight 0.5 each
    x = torch.tensor([math.expm1(0.3)])
    enc = two_hot(x, SUPPORT)
    assert enc.shape == (1, 101)
    torch.testing.assert_close(enc[0, 51], torch.tensor(0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(enc[0, 52], torch.tensor(0.5), atol=1e-5, rtol=0)
    assert enc.sum().item() == pytest.approx(1.0)
    # values beyond the support are clamped into the last bin
    assert two_hot(torch.tensor([1e9]), SUPPORT)[0, 100].item() == pytest.approx(1.0)


def test_two_hot_round_trip():
    x = torch.linspace(-5000, 5000, 1001)
    # a very peaked logit vector equal to log(two_hot) decodes back to the value
    logits = torch.log(two_hot(x, SUPPORT) + 1e-30)
    torch.testing.assert_close(two_hot_inv(logits, SUPPORT), x, rtol=1e-4, atol=1e-4)


def test_soft_ce_hand_computed():
    logits = torch.zeros(1, 101)
    # uniform prediction: CE against any two-hot target is log(101)
    assert soft_ce(logits, torch.tensor([3.0]), SUPPORT).item() == pytest.approx(math.log(101))
    logits = torch.full((1, 101), -1e9)
    logits[0, 50] = 0.0
    logits[0, 51] = math.log(3.0)  # p(50) = 0.25, p(51) = 0.75
    target = torch.tensor([math.expm1(0.1)])  # position 50.5 -> weights 0.5 / 0.5
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert soft_ce(logits, target, SUPPORT).item() == pytest.approx(expected)


def test_soft_ce_matches_dense_definition():
    logits = torch.randn(4, 7, 101)
    target = torch.randn(4, 7) * 50
    dense = -(two_hot(target, SUPPORT) * torch.log_softmax(logits, -1)).sum(-1)
    torch.testing.assert_close(soft_ce(logits, target, SUPPORT), dense)
