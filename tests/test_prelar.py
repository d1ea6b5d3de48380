"""PreLAR / APV / DreamerV2 pieces at tiny sizes: latent-action KL, the consistency loss's gradient, the
pretrained-model transfer, DreamerV2's gradient paths, returns, the kNN bonus and the clip files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pwm.algorithms.dreamerv2 import DreamerV2
from pwm.algorithms.prelar import VideoPretrain
from pwm.checkpoint.pretrained import load_pretrained, save_pretrained
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.config.dreamer import DreamerAlgConfig, DreamerModelConfig
from pwm.data.pixel_replay import PixelBatch
from pwm.data.videos import VideoClips, VideoDataError, read_clip, write_clip
from pwm.losses.dreamer import lambda_return
from pwm.models.dreamer import TRANSFERRED
from pwm.models.novelty import KNNVideoBonus
from pwm.models.rssm import straight_through_onehot

TINY = DreamerModelConfig(depth=4, deter=16, hidden=16, groups=4, classes=4, units=16, layers=1,
                          latent_action=8, slot_units=16)  # fmt: skip
RSSM_TENSORS = 13  # img_in (w, b), GRU linear w + LayerNorm (w, b), img_out, img_logits, obs_out, obs_logits (w, b)
ENCODER_TENSORS, DECODER_TENSORS = 8, 10  # 4 convs (w, b); linear + 4 transposed convs (w, b)


@pytest.fixture(autouse=True)
def _one_thread(_seed_and_threads):
    """Tiny convolutions: one thread is as fast, and two spin badly on a loaded 2-core machine (10-50x slower)."""
    torch.set_num_threads(1)


def _clips(batch: int = 4, steps: int = 6, static: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (batch, 1 if static else steps, 3, 64, 64), generator=gen, dtype=torch.uint8)
    return frames.expand(batch, steps, 3, 64, 64).clone() if static else frames


def _pretrain(name: str = "prelar_pretrain", **kw) -> VideoPretrain:
    return VideoPretrain(DreamerAlgConfig(name=name, **kw), TINY)


def test_latent_action_kl_vanishes_on_static_video():
    """Identical frames carry no action: starting from latent actions of mean 1 (KL = 0.5 per dim), the KL to
    N(0, I) is driven to ~0."""
    algo = _pretrain(model_lr=3e-3)
    with torch.no_grad():
        algo.vanet.head[-1].bias[: TINY.latent_action] = 1.0
    frames = _clips(batch=2, steps=4, static=True)
    first = algo.update(frames)["pre/va_kl"]
    for _ in range(30):
        last = algo.update(frames)["pre/va_kl"]
    assert first > 3.0
    assert last < 0.02 * first


@pytest.mark.parametrize("kind", ["sign", "soft"])
def test_consistency_loss_gradient(kind):
    """The released ``sign`` loss is non-zero yet gives exactly zero gradient to every parameter; ``soft`` does not."""
    algo = _pretrain(consistency=kind)
    image = _clips(batch=6).float() / 255 - 0.5
    embed = algo.model.encoder(image)
    slot, mean, std = algo.latent_actions(image)
    post, _ = algo.model.rssm.observe(embed, slot)
    loss = algo.consistency(post, slot, mean, std)
    loss.backward()
    grads = [p.grad for p in algo.vanet.parameters() if p.grad is not None]
    assert loss.item() > 0 and grads
    total = sum(g.abs().sum().item() for g in grads)
    assert (total == 0.0) if kind == "sign" else (total > 0)


def test_pretrained_model_carries_every_transferred_tensor_into_finetuning(tmp_path):
    pre = _pretrain()
    pre.update(_clips())
    save_pretrained(pre.model, TRANSFERRED, tmp_path / "pretrained.pt", {"model": "tiny"})
    ft = DreamerV2(DreamerAlgConfig(name="prelar_finetune", pretrained=str(tmp_path)), TINY, action_dim=4)
    carried = load_pretrained(ft.model, tmp_path, TRANSFERRED)
    assert len(ft.model.rssm.state_dict()) == RSSM_TENSORS
    assert carried == RSSM_TENSORS + ENCODER_TENSORS + DECODER_TENSORS
    for part in TRANSFERRED:
        src, dst = getattr(pre.model, part).state_dict(), getattr(ft.model, part).state_dict()
        assert all(torch.equal(src[k], dst[k]) for k in src)
    assert ft.model.rssm.action_dim == pre.model.rssm.action_dim == TINY.latent_action  # the shared slot
    assert ft.model.slot(torch.zeros(2, 4)).shape == (2, TINY.latent_action)


def test_pretrained_model_of_another_size_is_a_one_line_error(tmp_path):
    pre = _pretrain()
    save_pretrained(pre.model, TRANSFERRED, tmp_path / "pretrained.pt", {})
    bigger = DreamerModelConfig(**{**TINY.__dict__, "deter": 24})
    ft = DreamerV2(DreamerAlgConfig(name="prelar_finetune", pretrained=str(tmp_path)), bigger, action_dim=4)
    with pytest.raises(CheckpointError, match=r"encoder|rssm") as err:
        load_pretrained(ft.model, tmp_path, TRANSFERRED)
    assert "\n" not in str(err.value) and "same preset" in str(err.value)
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable pretrained model"):
        load_pretrained(ft.model, tmp_path / "other.pt", TRANSFERRED)


def _batch(actions: int = 4) -> PixelBatch:
    return PixelBatch(_clips(batch=3, steps=5), torch.rand(3, 5, actions) * 2 - 1, torch.rand(3, 5))


def test_straight_through_onehot_draws_the_categorical_law_with_the_probabilities_gradient():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25]])).expand(50_000, 2, 4)
    sample = straight_through_onehot(logits)
    assert sample.shape == (50_000, 2, 4) and torch.equal(sample.sum(-1), torch.ones(50_000, 2))
    freq = sample.detach().mean(0)
    expected = torch.tensor([[0.1, 0.2, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert (freq - expected).abs().max() < 0.01 and freq[0, 3] == 0  # a zero-probability class is never drawn
    x = torch.randn(3, 2, 4, requires_grad=True)
    weight = torch.randn(2, 4)
    (straight_through_onehot(x) * weight).sum().backward()
    straight = x.grad.clone()
    x.grad = None
    (torch.softmax(x, -1) * weight).sum().backward()
    torch.testing.assert_close(straight, x.grad)


def test_imagined_actor_gradient_reaches_the_actor_only():
    algo = DreamerV2(DreamerAlgConfig(horizon=4), TINY, action_dim=4)
    post, _ = algo._model_update(_batch())
    start = post.map(lambda x: x.reshape(-1, *x.shape[2:]))
    for opt in (algo.model_opt, algo.actor_opt, algo.critic_opt):
        opt.zero_grad(set_to_none=True)
    loss, _, _ = algo.actor_loss(start)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in algo.actor.parameters())
    for module in (algo.model, algo.critic, algo.slow_critic):
        assert all(p.grad is None for p in module.parameters())
    assert all(p.requires_grad for p in algo.model.parameters())  # unfrozen again for the next model update


def test_finetune_warmup_holds_rssm_and_encoder_then_releases_them():
    cfg = DreamerAlgConfig(name="prelar_finetune", pretrained="unused", warmup_updates=2, horizon=3, bonus_queue=16)
    algo = DreamerV2(cfg, TINY, action_dim=4)
    before = {k: v.clone() for k, v in algo.model.rssm.state_dict().items()}
    dec_before = algo.model.decoder.linear.weight.clone()
    for _ in range(2):
        metrics = algo.update(_batch())
    assert all(torch.equal(before[k], v) for k, v in algo.model.rssm.state_dict().items())
    assert not torch.equal(dec_before, algo.model.decoder.linear.weight)
    assert "wm/bonus" in metrics and "wm/aux_reward_loss" in metrics
    algo.update(_batch())
    assert not torch.equal(before["img_in.weight"], algo.model.rssm.img_in.weight)


def test_lambda_return_matches_hand_computation():
    reward = torch.tensor([[1.0], [2.0]])
    value = torch.tensor([[0.0], [10.0], [20.0]])
    # R_1 = 2 + 0.9 * (0.5 * 20 + 0.5 * 20) = 20; R_0 = 1 + 0.9 * (0.5 * 10 + 0.5 * 20) = 14.5
    assert torch.allclose(lambda_return(reward, value, 0.9, 0.5), torch.tensor([[14.5], [20.0]]))


def test_knn_bonus_is_zero_for_repeats_and_large_for_novel_windows():
    bonus = KNNVideoBonus(embed_dim=8, k=3, queue_size=64, window=2, dim=4)
    same = torch.ones(1, 6, 8)
    assert torch.allclose(bonus(same), torch.zeros(1, 5))  # every window has exact twins in the queue
    novel = torch.cat([torch.ones(1, 3, 8), 50 * torch.ones(1, 3, 8)], 1)
    out = bonus(novel)
    assert out[0, -1] > 0 and out[0, 0] == 0  # the all-ones window has twins from the first batch


def test_clip_files_round_trip_and_bad_input(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 3, 64, 64), dtype=np.uint8)
    path = write_clip(tmp_path, "metaworld", "mw-reach", 3, frames)
    assert path == tmp_path / "metaworld" / "mw-reach" / "clip_00003.npz"
    assert np.array_equal(read_clip(path), frames)
    assert VideoClips(tmp_path, seq_len=5).sample(2).shape == (2, 5, 3, 64, 64)
    with pytest.raises(VideoDataError, match="has no clips"):
        VideoClips(tmp_path / "metaworld", seq_len=5)
    np.savez(tmp_path / "metaworld" / "mw-reach" / "clip_00004.npz", frames=np.array([{"x": 1}], dtype=object))
    with pytest.raises(VideoDataError, match=r"clip_00004\.npz: not a readable clip file") as err:
        VideoClips(tmp_path, seq_len=5)
    assert "\n" not in str(err.value)
