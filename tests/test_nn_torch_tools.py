"""companion.nn under PyTorch's own tools: update_bn, convert_sync_batchnorm, vmap, TorchScript,
fuse_modules and fuse_conv_bn_eval, plus the parity gaps of dtype, old checkpoints and empty batches.

Each test runs the tool on a companion layer and on the equivalent torch.nn layer (same state) and
compares, or pins the documented limitation (see the table in ``companion.nn``'s docstring).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import companion.nn as cnn
from companion.nn.fusion import fuser_method_mapping

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

BATCH_NORMS_1D = [
    lambda: cnn.BatchNorm1d(3),
    lambda: cnn.GhostBatchNorm1d(3, 4),
    lambda: cnn.BatchRenorm1d(3),
]
BATCH_NORMS_2D = [
    lambda: cnn.BatchNorm2d(3),
    lambda: cnn.GhostBatchNorm2d(3, 4),
    lambda: cnn.BatchRenorm2d(3),
]


def data(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen) * 2 + 1).to(dtype)


def randomized(module: nn.Module, seed: int = 1) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if name.endswith("num_batches_tracked"):
                t.fill_(5)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen))
    return module


def torch_twin(layer: nn.Module) -> nn.Module:
    """The torch.nn batch norm with the same arguments and state as ``layer``."""
    cls = nn.BatchNorm1d if "1d" in type(layer).__name__ else nn.BatchNorm2d
    twin = cls(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)
    twin.load_state_dict(layer.state_dict())
    return twin.train(layer.training)


# ----------------------------------------------------------------------------- isinstance


@pytest.mark.parametrize("make", BATCH_NORMS_1D + BATCH_NORMS_2D)
def test_batch_norms_are_torch_batch_norms(make):
    assert isinstance(make(), _BatchNorm)


def test_concrete_classes_are_torchs():
    assert isinstance(cnn.BatchNorm1d(3), nn.BatchNorm1d)
    assert isinstance(cnn.BatchNorm2d(3), nn.BatchNorm2d)
    assert isinstance(cnn.InstanceNorm2d(3), nn.InstanceNorm2d)


# ----------------------------------------------------------------------------- update_bn


def test_update_bn_recomputes_companion_statistics_like_torchs():
    torch.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 3), cnn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    ref = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    ref.load_state_dict(ours.state_dict())
    loader = [data(16, 4, seed=s) for s in range(5)]
    torch.optim.swa_utils.update_bn(loader, ours)
    torch.optim.swa_utils.update_bn(loader, ref)
    assert ours[1].running_mean.abs().max() > 0.01  # not the reset value 0
    torch.testing.assert_close(ours.state_dict(), ref.state_dict())
    assert ours[1].momentum == 0.1  # restored


@pytest.mark.parametrize("cls, shape", [(cnn.GhostBatchNorm1d, (16, 3)), (cnn.GhostBatchNorm2d, (16, 3, 2, 2))])
def test_update_bn_on_ghost_batch_norm_averages_the_ghost_batches(cls, shape):
    ghost = cls(3, 4)
    ref = torch_twin(ghost)
    loader = [data(*shape, seed=s) for s in range(3)]
    torch.optim.swa_utils.update_bn(loader, ghost)
    torch.optim.swa_utils.update_bn([g for x in loader for g in x.split(4)], ref)
    torch.testing.assert_close(ghost.state_dict(), ref.state_dict())


def test_update_bn_on_batch_renorm_recomputes_batch_norm_statistics():
    renorm = randomized(cnn.BatchRenorm1d(3))
    ref = torch_twin(renorm)
    loader = [data(16, 3, seed=s) for s in range(3)]
    torch.optim.swa_utils.update_bn(loader, renorm)
    torch.optim.swa_utils.update_bn(loader, ref)
    torch.testing.assert_close(renorm.state_dict(), ref.state_dict())


# ----------------------------------------------------------------------------- convert_sync_batchnorm


def test_convert_sync_batchnorm_replaces_companion_batch_norm_by_torchs():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), randomized(cnn.BatchNorm2d(3)))
    x = data(8, 2, 4, 4)
    expected_train = copy.deepcopy(model)(x)
    expected_eval = copy.deepcopy(model).eval()(x)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(model))
    assert type(synced[1]) is nn.SyncBatchNorm
    torch.testing.assert_close(synced[1].state_dict(), model[1].state_dict())
    # without an initialized process group SyncBatchNorm computes plain batch norm
    torch.testing.assert_close(copy.deepcopy(synced)(x), expected_train, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(synced.eval()(x), expected_eval, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [BATCH_NORMS_2D[1], BATCH_NORMS_2D[2]])
def test_convert_sync_batchnorm_turns_ghost_and_renorm_into_plain_sync_batch_norm(make):
    """Pinned limitation (documented): the ghost batches and the renorm correction are lost."""
    layer = randomized(make())
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(layer)
    assert type(synced) is nn.SyncBatchNorm
    x = data(16, 3, 2, 2)
    torch.testing.assert_close(synced.eval()(x), layer.eval()(x), rtol=1e-5, atol=1e-5)  # same in eval


# ----------------------------------------------------------------------------- vmap


@pytest.mark.parametrize("make, shape", [(BATCH_NORMS_1D[0], (8, 3)), (BATCH_NORMS_1D[1], (8, 3)),
                                         (BATCH_NORMS_2D[0], (8, 3, 2, 2)), (BATCH_NORMS_2D[1], (8, 3, 2, 2))])
def test_vmap_after_replace_all_batch_norm_modules(make, shape):
    layer = randomized(make())
    torch.func.replace_all_batch_norm_modules_(layer)
    assert layer.running_mean is None and layer.track_running_stats is False
    x = data(5, *shape)
    batched = torch.func.vmap(layer)(x)
    looped = torch.stack([layer(x[i]) for i in range(5)])
    torch.testing.assert_close(batched, looped)


def test_vmap_over_an_ensemble_of_companion_models():
    models = [nn.Sequential(nn.Linear(4, 3), cnn.BatchNorm1d(3)) for _ in range(3)]
    for m in models:
        torch.func.replace_all_batch_norm_modules_(m)
    params, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def call(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    x = data(8, 4)
    out = torch.func.vmap(call, in_dims=(0, 0, None))(params, buffers, x)
    torch.testing.assert_close(out, torch.stack([m(x) for m in models]))


def test_vmap_refuses_batch_renorm_without_running_statistics():
    layer = torch.func.replace_all_batch_norm_modules_(cnn.BatchRenorm1d(3))
    with pytest.raises(RuntimeError, match="batch renormalization needs running_mean"):
        torch.func.vmap(layer)(data(2, 8, 3))


# ----------------------------------------------------------------------------- TorchScript

ALL_LAYERS = [
    (lambda: cnn.BatchNorm1d(3), (8, 3)),
    (lambda: cnn.BatchNorm1d(3, momentum=None, affine=False), (8, 3, 5)),
    (lambda: cnn.BatchNorm2d(3, track_running_stats=False), (8, 3, 2, 2)),
    (lambda: cnn.GhostBatchNorm1d(3, 4), (8, 3)),
    (lambda: cnn.GhostBatchNorm2d(3, 4), (8, 3, 2, 2)),
    (lambda: cnn.BatchRenorm1d(3, r_max=1.5, d_max=0.5), (8, 3)),
    (lambda: cnn.BatchRenorm2d(3, warmup_steps=1, r_ramp_steps=2), (8, 3, 2, 2)),
    (lambda: cnn.LayerNorm(3), (8, 3)),
    (lambda: cnn.LayerNorm((3, 2), bias=False), (8, 3, 2)),
    (lambda: cnn.GroupNorm(1, 3), (8, 3, 2, 2)),
    (lambda: cnn.InstanceNorm2d(3, affine=True, track_running_stats=True), (8, 3, 2, 2)),
    (lambda: cnn.InstanceNorm2d(3), (3, 2, 2)),
    (lambda: cnn.RMSNorm(3), (8, 3)),
    (lambda: cnn.RMSNorm(3, eps=1e-3, elementwise_affine=False), (8, 3)),
]


@pytest.mark.parametrize("make, shape", ALL_LAYERS)
def test_every_layer_scripts_and_matches_eager(make, shape):
    eager = randomized(make())
    scripted = torch.jit.script(copy.deepcopy(eager))
    for step in range(3):
        x = data(*shape, seed=step)
        torch.testing.assert_close(scripted(x), eager(x))
    torch.testing.assert_close(scripted.state_dict(), eager.state_dict())
    eager.eval()
    scripted.eval()
    torch.testing.assert_close(scripted(data(*shape, seed=9)), eager(data(*shape, seed=9)))


def test_scripted_layer_keeps_the_error_contract():
    scripted = torch.jit.script(cnn.BatchNorm1d(3))
    with pytest.raises(torch.jit.Error, match="num_features=3"):
        scripted(data(8, 4))
    with pytest.raises(torch.jit.Error, match="input contains NaN"):
        scripted(torch.full((8, 3), float("nan")))


# ----------------------------------------------------------------------------- fusion


@pytest.mark.parametrize("conv, make, shape", [
    (lambda: nn.Conv2d(2, 3, 3, padding=1), BATCH_NORMS_2D[0], (4, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1), BATCH_NORMS_2D[1], (4, 2, 5, 5)),
    (lambda: nn.Conv1d(2, 3, 3), BATCH_NORMS_1D[2], (4, 2, 7)),
])
def test_fuse_conv_bn_eval_accepts_companion_batch_norm(conv, make, shape):
    conv, bn = conv().eval(), randomized(make()).eval()
    x = data(*shape)
    fused = torch.nn.utils.fuse_conv_bn_eval(conv, bn)
    torch.testing.assert_close(fused(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_fuse_linear_bn_eval_accepts_companion_batch_norm():
    linear, bn = nn.Linear(4, 3).eval(), randomized(cnn.BatchNorm1d(3)).eval()
    x = data(6, 4)
    fused = torch.nn.utils.fuse_linear_bn_eval(linear, bn)
    torch.testing.assert_close(fused(x), bn(linear(x)), rtol=1e-5, atol=1e-5)


def test_fuse_modules_needs_the_companion_mapping():
    from torch.ao.quantization import fuse_modules

    model = nn.Sequential(nn.Conv2d(2, 3, 3), randomized(cnn.BatchNorm2d(3)), nn.ReLU(),
                          nn.Flatten(), nn.Linear(12, 3), randomized(cnn.GhostBatchNorm1d(3, 2))).eval()
    x = data(4, 2, 4, 4)
    with pytest.raises(AssertionError, match="did not find fuser method"):  # loud, not a silent no-op
        fuse_modules(copy.deepcopy(model), [["0", "1", "2"]])
    fused = fuse_modules(copy.deepcopy(model), [["0", "1", "2"], ["4", "5"]],
                         fuse_custom_config_dict={"additional_fuser_method_mapping": fuser_method_mapping()})
    assert isinstance(fused[1], nn.Identity) and isinstance(fused[5], nn.Identity)
    torch.testing.assert_close(fused(x), model(x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- dtype

HALF_LAYERS = [
    (cnn.BatchNorm1d(4), nn.BatchNorm1d(4), (16, 4)),
    (cnn.BatchNorm2d(4), nn.BatchNorm2d(4), (8, 4, 3, 3)),
    (cnn.LayerNorm(4), nn.LayerNorm(4), (16, 4)),
    (cnn.GroupNorm(2, 4), nn.GroupNorm(2, 4), (8, 4, 3)),
    (cnn.InstanceNorm2d(4, affine=True, track_running_stats=True),
     nn.InstanceNorm2d(4, affine=True, track_running_stats=True), (8, 4, 3, 3)),
    (cnn.RMSNorm(4), nn.RMSNorm(4), (16, 4)),
]


@pytest.mark.filterwarnings("ignore:Mismatch dtype")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("ours, ref, shape", HALF_LAYERS)
def test_half_input_gives_half_output_with_float32_statistics(ours, ref, shape, dtype):
    ours, ref = copy.deepcopy(ours), copy.deepcopy(ref)
    randomized(ref)
    ours.load_state_dict(ref.state_dict())
    for training in (True, False):
        ours.train(training)
        ref.train(training)
        x = data(*shape, dtype=dtype)
        y_ours, y_ref = ours(x), ref(x)
        assert y_ours.dtype == dtype
        torch.testing.assert_close(y_ours.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
        for name, buffer in ours.named_buffers():
            if buffer.is_floating_point():
                assert buffer.dtype == torch.float32, name
                torch.testing.assert_close(buffer, ref.get_buffer(name), rtol=1e-3, atol=1e-3)


def test_half_statistics_are_computed_in_float32():
    """Values near float16's max: their squares overflow float16, not float32."""
    x = torch.tensor([[60000.0], [-60000.0], [30000.0], [-30000.0]]).half()
    y = cnn.BatchNorm1d(1)(x)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()


# ----------------------------------------------------------------------------- old checkpoints


@pytest.mark.parametrize("version", [None, 1])
def test_old_checkpoint_without_num_batches_tracked_loads_nested(version):
    def build(norm):
        return nn.Sequential(nn.Linear(3, 3), nn.Sequential(norm(3), nn.ReLU()))

    source = randomized(build(nn.BatchNorm1d))
    state = source.state_dict()
    del state["1.0.num_batches_tracked"]
    if version is None:
        del state._metadata["1.0"]["version"]
    else:
        state._metadata["1.0"]["version"] = version
    ours, ref = randomized(build(cnn.BatchNorm1d), 7), randomized(build(nn.BatchNorm1d), 7)
    ours.load_state_dict(copy.deepcopy(state), strict=True)
    ref.load_state_dict(copy.deepcopy(state), strict=True)
    torch.testing.assert_close(ours.state_dict(), ref.state_dict())
    assert int(ours[1][0].num_batches_tracked) == int(ref[1][0].num_batches_tracked)


def test_current_checkpoint_missing_num_batches_tracked_is_refused_like_torch():
    state = cnn.BatchNorm1d(3).state_dict()
    del state["num_batches_tracked"]
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        cnn.BatchNorm1d(3).load_state_dict(state)


# ----------------------------------------------------------------------------- empty batches

EMPTY_CASES = [
    (lambda: cnn.BatchNorm1d(3), lambda: nn.BatchNorm1d(3), (0, 3)),
    (lambda: cnn.BatchNorm1d(3), lambda: nn.BatchNorm1d(3), (2, 3, 0)),
    (lambda: cnn.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (0, 3, 2, 2)),
    (lambda: cnn.GhostBatchNorm1d(3, 2), lambda: nn.BatchNorm1d(3), (0, 3)),
    (lambda: cnn.BatchRenorm2d(3), lambda: nn.BatchNorm2d(3), (0, 3, 2, 2)),
    (lambda: cnn.GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4), (0, 4, 3)),
    (lambda: cnn.LayerNorm(4), lambda: nn.LayerNorm(4), (0, 4)),
    (lambda: cnn.RMSNorm(4), lambda: nn.RMSNorm(4), (0, 4)),
    (lambda: cnn.InstanceNorm2d(3, track_running_stats=True), None, (0, 3, 2, 2)),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("ours, ref, shape", EMPTY_CASES)
def test_empty_batch_gives_empty_output_like_torch(ours, ref, shape, training):
    ours = ours().train(training)
    x = torch.randn(shape, requires_grad=True)
    y = ours(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape
    for name, buffer in ours.named_buffers():
        if buffer.is_floating_point():
            assert torch.isfinite(buffer).all(), name
    if ref is not None:
        ref = ref().train(training)
        ref(x)
        torch.testing.assert_close(ours.state_dict(), ref.state_dict())  # counter +1, stats kept
