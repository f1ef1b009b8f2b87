"""Distributed training, torch.compile, threads and concurrent first-use builds."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import torchsample as ts

WORLD = 2
SHARD = 16


class FeatureGridModel(nn.Module):
    """A learned feature grid sampled with smoothstep, decoded by an MLP."""

    def __init__(self):
        super().__init__()
        self.featmap = nn.Parameter(torch.linspace(-1, 1, 4 * 6 * 5).reshape(1, 4, 6, 5))
        self.decoder = ts.models.MLP(4, 8, 1)
        with torch.no_grad():
            for i, p in enumerate(self.decoder.parameters()):
                p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) * (1 + i))

    def forward(self, coords):
        featmap = self.featmap.expand(coords.shape[0], -1, -1, -1)
        return self.decoder(ts.sample(coords, featmap, smoothstep=True))


def training_data():
    gen = torch.Generator().manual_seed(0)
    coords = torch.rand(WORLD * SHARD, 10, 2, generator=gen) * 2 - 1
    targets = torch.sin(3 * coords.sum(-1, keepdim=True))
    return coords, targets


def assert_compiled_serves(model, coords):
    grid = coords.reshape(coords.shape[0], 1, -1, 2)
    featmap = model.featmap.expand(coords.shape[0], -1, -1, -1)
    assert ts.which_backend(featmap, grid, smoothstep=True).name == "compiled"


def loss_of(model, coords, targets):
    return ((model(coords) - targets) ** 2).mean()


def _ddp_worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        model = DistributedDataParallel(FeatureGridModel())
        coords, targets = training_data()
        assert_compiled_serves(model.module, coords)
        shard = slice(rank * SHARD, (rank + 1) * SHARD)
        loss_of(model, coords[shard], targets[shard]).backward()
        grads = {name: p.grad for name, p in model.module.named_parameters()}
        torch.save(grads, os.path.join(out_dir, f"rank{rank}.pt"))
        # Teardown order matters on torch 2.13: gloo work launched during
        # backward keeps a Python object in its thread-local state, and the
        # process group's destructor joins gloo's threads while holding the
        # GIL.  If the model's reducer drops the last reference to the group
        # while a gloo thread is still freeing such work, both wait forever.
        # The barrier lets the threads finish and free their work first, and
        # deleting the model while the group is registered leaves the
        # destructor to destroy_process_group.
        dist.barrier()
        del model
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gradients_match_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    model = FeatureGridModel()
    loss_of(model, *training_data()).backward()
    for name, p in model.named_parameters():
        for rank, grads in enumerate(ranks):
            assert torch.equal(grads[name], ranks[0][name]), f"{name} differs on rank {rank}"
        torch.testing.assert_close(ranks[0][name], p.grad, rtol=1e-5, atol=1e-6, msg=name)


def eikonal_step(model, coords):
    """An SDF-style loss: the gradient of the output w.r.t. the coordinates has norm one."""
    sdf = model(coords)
    (normal,) = torch.autograd.grad(sdf.sum(), coords, create_graph=True)
    return ((normal.norm(dim=-1) - 1) ** 2).mean() + sdf.abs().mean()


@pytest.mark.slow
@pytest.mark.compiler  # inductor generates and compiles C++ for the CPU
def test_torch_compile_fullgraph_double_backward_training_step(monkeypatch, tmp_path):
    # Dynamo traces torch.autograd.grad only with this switch on.
    monkeypatch.setattr(torch._dynamo.config, "trace_autograd_ops", True)
    # Compile from scratch: torch's on-disk caches key on the traced user
    # code, not on the custom ops' schemas, so a graph cached by an older
    # torchsample would call the ops with their old arguments.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch._inductor.config, "fx_graph_cache", False)
    monkeypatch.setattr(torch._functorch.config, "enable_autograd_cache", False)
    torch._dynamo.reset()
    coords = training_data()[0][:4].requires_grad_()

    eager = FeatureGridModel()
    assert_compiled_serves(eager, coords)
    eikonal_step(eager, coords).backward()

    compiled_model = FeatureGridModel()
    step = torch.compile(eikonal_step, fullgraph=True)
    step(compiled_model, coords).backward()
    for (name, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_concurrent_threads_get_correct_results():
    gen = torch.Generator().manual_seed(1)
    cases = [
        (torch.randn(2, 3, 9, 7, generator=gen), torch.rand(2, 50, 1, 2, generator=gen) * 2 - 1)
        for _ in range(8)
    ]
    expected = [ts.grid_sample(i, g, smoothstep=True) for i, g in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda c: ts.grid_sample(*c, smoothstep=True), cases))
            for got, want in zip(results, expected):
                assert torch.equal(got, want)


BUILD_AND_USE = textwrap.dedent(
    """
    import torch, torchsample._extension as ext
    ext.load()
    image = torch.arange(4.0).reshape(1, 1, 2, 2)
    grid = torch.zeros(1, 1, 1, 2)
    out = torch.ops.torchsample.grid_sample(image, grid, 0, 0, False, False)
    print(out.item())
    """
)


@pytest.mark.slow
@pytest.mark.compiler
def test_two_processes_building_at_once_both_work(tmp_path):
    if ts.ops.BACKENDS.get("compiled") is None:
        pytest.fail("the compiled backend is not registered")
    env = dict(os.environ, TORCHSAMPLE_CACHE_DIR=str(tmp_path / "cache"), TORCHSAMPLE_KERNELS="jit")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_AND_USE],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert float(out) == pytest.approx(1.5)
    announcements = sum(err.count("torchsample: compiling") for _, err in outputs)
    assert announcements == 1, "exactly one process should have compiled"
