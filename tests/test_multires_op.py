"""The fused multi-resolution encoding op against MultiResGrid's plain-PyTorch path.

Every comparison runs the same module twice: once through the compiled op
(``TORCHSAMPLE_BACKEND=compiled``) and once with
``TORCHSAMPLE_BACKEND=reference``, which encodes level by level with PyTorch
operations, differentiable to any order.
"""

import pytest
import torch

from torchsample import _extension
from torchsample.encoding import MultiResGrid
from torchsample.ops import compiled, compiled_multires

_extension.load()
assert compiled.unavailable_reason() is None
OPS = torch.ops.torchsample


def make_grid(dims, smoothstep, n_features=2, dtype=torch.float64, seed=0):
    # Two dense levels then hashed ones (small tables: collisions included).
    encoder = MultiResGrid(
        dims,
        n_levels=4,
        n_features=n_features,
        base_resolution=3,
        max_resolution=19,
        log2_hashmap_size=5 if dims == 2 else 7,
        smoothstep=smoothstep,
        dtype=dtype,
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for table in encoder.tables:
            table.copy_(torch.randn(table.shape, generator=generator, dtype=dtype))
    assert [level.hashed for level in encoder.levels].count(False) >= 1
    assert [level.hashed for level in encoder.levels].count(True) >= 1
    return encoder


def random_coords(n, dims, dtype=torch.float64, spread=1.1, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, dims, generator=generator, dtype=dtype) * 2 - 1) * spread


def derivatives(encoder, coords):
    """Output, first derivatives (coords, tables) and an eikonal-style second order."""
    coords = coords.detach().requires_grad_()
    out = encoder(coords)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)
    first = torch.autograd.grad(out, (coords, *encoder.tables), upstream, create_graph=True)
    # A loss on the coordinate gradient, as an eikonal term: its gradient
    # reaches the coordinates, the tables and (through upstream) the network.
    upstream.requires_grad_()
    (normals,) = torch.autograd.grad(out, coords, upstream, create_graph=True)
    loss = (normals.norm(dim=-1) - 1).square().mean()
    second = torch.autograd.grad(loss, (coords, upstream, *encoder.tables))
    return [out, *first, *second]


def _with_backend(monkeypatch, name):
    def run(fn, *args):
        with monkeypatch.context() as patch:
            patch.setenv("TORCHSAMPLE_BACKEND", name)
            return fn(*args)

    return run


@pytest.fixture
def reference_backend(monkeypatch):
    return _with_backend(monkeypatch, "reference")


@pytest.fixture
def compiled_backend(monkeypatch):
    return _with_backend(monkeypatch, "compiled")


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("smoothstep", [False, True])
@pytest.mark.parametrize("n_features", [1, 2, 4, 8])
def test_matches_the_reference_path_to_second_order(
    dims, smoothstep, n_features, reference_backend, compiled_backend
):
    encoder = make_grid(dims, smoothstep, n_features)
    coords = random_coords(40, dims)
    assert encoder.which_backend(coords).name == "compiled"
    fused = compiled_backend(derivatives, encoder, coords)
    expected = reference_backend(derivatives, encoder, coords)
    assert len(fused) == len(expected) == 4 + 2 * len(encoder.tables)
    for a, b in zip(fused, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dims", [2, 3])
def test_gradcheck_and_gradgradcheck(dims):
    encoder = make_grid(dims, smoothstep=True)
    coords = random_coords(12, dims).requires_grad_()
    tables = [t.detach().requires_grad_() for t in encoder.tables]

    def encode(coords, *tables):
        return compiled_multires.encode(coords, list(tables), encoder.resolutions, True)

    assert torch.autograd.gradcheck(encode, (coords, *tables))
    assert torch.autograd.gradgradcheck(encode, (coords, *tables))


def test_opcheck():
    encoder = make_grid(3, smoothstep=True, dtype=torch.float32)
    coords = random_coords(16, 3, dtype=torch.float32)
    tables = [t.detach().clone().requires_grad_() for t in encoder.tables]
    resolutions = list(encoder.resolutions)
    grad_output = torch.randn(16, encoder.out_dims)
    torch.library.opcheck(OPS.multires_encode, (coords.requires_grad_(), tables, resolutions, True))
    torch.library.opcheck(
        OPS.multires_encode_backward,
        (
            grad_output,
            coords.detach(),
            [t.detach() for t in tables],
            resolutions,
            True,
            [True, True],
        ),
    )
    torch.library.opcheck(
        OPS.multires_encode_double_backward,
        (
            torch.randn(16, 3),
            [],
            grad_output,
            coords.detach(),
            [t.detach() for t in tables],
            resolutions,
            True,
            [True, True, True],
        ),
    )


def test_third_derivative_names_the_reference_backend(monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(2, smoothstep=True)
    coords = random_coords(5, 2).requires_grad_()
    (g,) = torch.autograd.grad(encoder(coords).sum(), coords, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), coords, create_graph=True)
    with pytest.raises(RuntimeError, match="TORCHSAMPLE_BACKEND=reference"):
        gg.sum().backward()


def test_non_finite_and_far_coordinates(reference_backend, monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(3, smoothstep=True)
    coords = torch.tensor(
        [
            [float("nan"), 0.0, 0.0],
            [float("inf"), -float("inf"), 0.5],
            [50.0, -50.0, 1e30],
            [1.0, 1.0, 1.0],
            [-1.0, -1.0, -1.0],
        ],
        dtype=torch.float64,
    )
    out = encoder(coords)
    assert torch.isnan(out[0]).all()
    torch.testing.assert_close(out[1:], reference_backend(encoder, coords[1:]))
    # Clamped coordinates get no gradient, as with border padding; the
    # others keep theirs.
    far = coords[1:3].clone().requires_grad_()
    encoder(far).sum().backward()
    assert not far.grad[:, :2].any() and not far.grad[1].any() and far.grad[0, 2] != 0


def test_empty_inputs(monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(2, smoothstep=False)
    coords = torch.empty(0, 2, dtype=torch.float64, requires_grad=True)
    out = encoder(coords)
    assert out.shape == (0, encoder.out_dims)
    out.sum().backward()
    assert coords.grad.shape == (0, 2)
    assert all(table.grad is not None and not table.grad.any() for table in encoder.tables)
    assert encoder(torch.empty(3, 0, 2, dtype=torch.float64)).shape == (3, 0, encoder.out_dims)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_tables_accumulate_in_float32(dtype, monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(3, smoothstep=True, dtype=torch.float32)
    half = make_grid(3, smoothstep=True, dtype=dtype)
    with torch.no_grad():
        for a, b in zip(half.tables, encoder.tables):
            b.copy_(a.float())
    coords = random_coords(64, 3, dtype=torch.float32)
    out = half(coords)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), encoder(coords), rtol=2e-2, atol=2e-2)
    coords.requires_grad_()
    half(coords).float().sum().backward()
    assert coords.grad.dtype == torch.float32 and torch.isfinite(coords.grad).all()
    assert all(table.grad.dtype == dtype for table in half.tables)


def test_table_gradients_are_deterministic(monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(3, smoothstep=True, dtype=torch.float32)
    coords = random_coords(5000, 3, dtype=torch.float32)
    grads = []
    for _ in range(2):
        encoder.zero_grad()
        encoder(coords).square().sum().backward()
        grads.append([table.grad.clone() for table in encoder.tables])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dims", [2, 3])
def test_sdf_step_gradients_do_not_depend_on_the_thread_count(monkeypatch, dims):
    # Coordinate gradients are summed over levels in level order and each
    # level's table gradient by one thread in point order, so one thread and
    # two give the same bits, first and second order.
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    encoder = make_grid(dims, smoothstep=True, dtype=torch.float32)
    coords = random_coords(5000, dims, dtype=torch.float32)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            encoder.zero_grad()
            x = coords.clone().requires_grad_()
            sdf = encoder(x).sum(-1)
            (normals,) = torch.autograd.grad(sdf.sum(), x, create_graph=True)
            (sdf.square().mean() + (normals.norm(dim=-1) - 1).square().mean()).backward()
            results.append([normals.detach(), x.grad] + [t.grad.clone() for t in encoder.tables])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_backends_are_chosen_like_grid_sample(monkeypatch):
    encoder = make_grid(2, smoothstep=False)
    coords = random_coords(4, 2)
    assert encoder.which_backend(coords).name == "compiled"
    # Coordinates that require grad (an SDF step's) take the fused op too:
    # its second derivatives are faster than the plain path's.
    assert encoder.which_backend(coords.requires_grad_()).name == "compiled"
    coords = coords.detach()
    for name in ("native", "reference"):
        monkeypatch.setenv("TORCHSAMPLE_BACKEND", name)
        choice = encoder.which_backend(coords)
        assert choice == (name, f"selected by TORCHSAMPLE_BACKEND={name}")
        encoder(coords)  # the plain path serves both


def test_state_dict_layout_is_unchanged():
    encoder = MultiResGrid(
        3, n_levels=3, base_resolution=4, max_resolution=32, log2_hashmap_size=10
    )
    assert list(encoder.state_dict()) == ["tables.0", "tables.1", "tables.2"]
    assert encoder.resolutions == (4, 11, 32)
    assert [tuple(t.shape) for t in encoder.tables] == [(1, 2, 4, 4, 4), (1024, 2), (1024, 2)]


_ARGUMENT_ERRORS = [
    (lambda c, t, r: OPS.multires_encode(c[:, :1], t, r, False), "coords must be"),
    (lambda c, t, r: OPS.multires_encode(c, t[:1], r, False), "1 tables but 2 resolutions"),
    (lambda c, t, r: OPS.multires_encode(c, [t[0], t[1][:3]], r, False), "power-of-two"),
    (
        lambda c, t, r: OPS.multires_encode(c, [t[0][..., :2], t[1]], r, False),
        "dense tables\\[0\\] must have shape",
    ),
    (
        lambda c, t, r: OPS.multires_encode(c.float(), t, r, False),
        "coords must be (torch.float64|Double)",
    ),
    (
        lambda c, t, r: OPS.multires_encode(c, [t[0], t[1].float()], r, False),
        "tables\\[1\\] has dtype",
    ),
    (lambda c, t, r: OPS.multires_encode(c, t, [r[0], 1], False), "resolutions\\[1\\] must be"),
    (
        lambda c, t, r: OPS.multires_encode_backward(
            c.new_zeros(5, 3), c, t, r, False, [True, True]
        ),
        "grad_output must have shape",
    ),
    (
        lambda c, t, r: OPS.multires_encode_double_backward(
            c.new_zeros(4, 2), [], c.new_zeros(5, 4), c, t, r, False, [True, True, True]
        ),
        "grad_grad_coords must have shape",
    ),
    (
        lambda c, t, r: OPS.multires_encode_double_backward(
            None, [t[0]], c.new_zeros(5, 4), c, t, r, False, [True, True, True]
        ),
        "grad_grad_tables must hold 2 tensors",
    ),
]


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("call, message", _ARGUMENT_ERRORS)
def test_every_argument_is_checked(call, message, device):
    # Real tensors reach the kernels' checks, meta tensors the fakes': both
    # must refuse with the same message.
    coords = random_coords(5, 2).to(device)
    tables = [
        torch.zeros(1, 2, 3, 3, dtype=torch.float64, device=device),
        torch.zeros(8, 2, dtype=torch.float64, device=device),
    ]
    with pytest.raises(RuntimeError, match=message):
        call(coords, tables, [3, 6])


@pytest.mark.slow
def test_torch_compile_fullgraph_sdf_step(monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    torch._dynamo.reset()
    encoder = make_grid(3, smoothstep=True, dtype=torch.float32)
    head = torch.nn.Linear(encoder.out_dims, 1)

    def sdf_step(coords):
        sdf = head(encoder(coords))
        (normals,) = torch.autograd.grad(sdf.sum(), coords, create_graph=True)
        return sdf.square().mean() + (normals.norm(dim=-1) - 1).square().mean()

    coords = random_coords(32, 3, dtype=torch.float32).requires_grad_()
    parameters = [coords, *encoder.tables, *head.parameters()]
    eager = sdf_step(coords)
    expected = torch.autograd.grad(eager, parameters)
    compiled_step = torch.compile(sdf_step, fullgraph=True, backend="aot_eager")
    # Tracing torch.autograd.grad inside the graph is opt-in.
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        loss = compiled_step(coords)
    torch.testing.assert_close(loss, eager)
    for a, b in zip(torch.autograd.grad(loss, parameters), expected, strict=True):
        torch.testing.assert_close(a, b)
