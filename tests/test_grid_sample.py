"""ts.grid_sample: known values, argument checks and the backend report."""

import re
import warnings

import pytest
import torch
import torch.nn.functional as F

import torchsample as ts
from torchsample.ops import BACKENDS

# Pixel values 0 1 / 2 3, so that inside the map bilinear gives ix + 2 * iy.
IMAGE = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64)


def at(*points):
    return torch.tensor([[list(points)]], dtype=torch.float64)


@pytest.mark.parametrize(
    "align,padding,points,expected",
    [
        # align_corners=False: pixel centers at -0.5 and 0.5.
        (False, "border", [(-1, -1), (1, 1), (0, -1), (0, 0)], [0.0, 3.0, 0.5, 1.5]),
        (False, "zeros", [(-1, -1), (1, 1), (0, -1), (0, 0)], [0.0, 0.75, 0.25, 1.5]),
        (
            False,
            "border",
            [(-0.5, -0.5), (0.5, 0.5), (-0.25, 0), (0.25, 0.25)],
            [0.0, 3.0, 1.25, 2.25],
        ),
        # align_corners=True: pixel centers at -1 and 1.
        (True, "zeros", [(-1, -1), (1, 1), (0, -1), (1, 0), (-0.5, 0)], [0.0, 3.0, 0.5, 2.0, 1.25]),
        (True, "reflection", [(-2, -1), (3, 1)], [0.5, 2.0]),
    ],
)
def test_known_values(align, padding, points, expected):
    out = ts.grid_sample(IMAGE, at(*points), padding_mode=padding, align_corners=align)
    assert out.flatten().tolist() == pytest.approx(expected)


def test_trilinear_is_an_alias_in_3d():
    volume = torch.randn(1, 2, 3, 4, 5, dtype=torch.float64)
    grid = torch.rand(1, 2, 3, 4, 3, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(
        ts.grid_sample(volume, grid, mode="trilinear"),
        F.grid_sample(volume, grid, align_corners=False),
    )


def test_matches_native_by_default_on_every_mode():
    image = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    grid = torch.rand(2, 4, 5, 2, dtype=torch.float64) * 2.4 - 1.2
    for mode in ("nearest", "bilinear", "bicubic"):
        torch.testing.assert_close(
            ts.grid_sample(image, grid, mode=mode, padding_mode="reflection"),
            F.grid_sample(image, grid, mode=mode, padding_mode="reflection", align_corners=False),
        )


def test_which_backend_reports_and_explains():
    # Large enough, and with enough channels, for the compiled kernels to win.
    image = torch.rand(1, 16, 32, 32)
    grid = torch.rand(1, 128, 128, 2) * 2 - 1
    first = next(iter(BACKENDS))
    plain = ts.which_backend(image, grid)
    assert plain.name == first
    smooth = ts.which_backend(image, grid, smoothstep=True)
    assert smooth.name != "native"
    labels = ts.which_backend(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), grid, mode="nearest")
    assert labels.name != "native"
    if "compiled" not in BACKENDS:
        assert plain == ("native", "first choice for this call")
        assert smooth.name == "reference" and "no smoothstep" in smooth.reason
        assert "integer" in labels.reason


def test_environment_variable_forces_a_backend(monkeypatch):
    image = torch.rand(1, 3, 8, 8)
    grid = torch.rand(1, 4, 4, 2) * 2 - 1
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "reference")
    assert ts.which_backend(image, grid) == (
        "reference",
        "selected by TORCHSAMPLE_BACKEND=reference",
    )
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "native")
    with pytest.raises(RuntimeError, match="TORCHSAMPLE_BACKEND=native cannot serve.*smoothstep"):
        ts.grid_sample(image, grid, smoothstep=True)
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "fastest")
    with pytest.raises(ValueError, match="TORCHSAMPLE_BACKEND must be one of.*got 'fastest'"):
        ts.grid_sample(image, grid)


def test_a_changed_environment_variable_takes_effect_at_the_next_call(monkeypatch):
    # grid_sample reads TORCHSAMPLE_BACKEND at every call, as which_backend does.
    image, grid = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 3, 2) * 2 - 1
    monkeypatch.delenv("TORCHSAMPLE_BACKEND", raising=False)
    expected = ["reference", "native", "reference", ts.which_backend(image, grid).name]
    expected.append(ts.which_backend(image, grid, smoothstep=True).name)
    served = []
    for name, backend in BACKENDS.items():
        monkeypatch.setattr(backend, "grid_sample", lambda *args, name=name: served.append(name))
    for requested in ("reference", "native", "reference", "auto"):
        monkeypatch.setenv("TORCHSAMPLE_BACKEND", requested)
        ts.grid_sample(image, grid)
    monkeypatch.delenv("TORCHSAMPLE_BACKEND")
    ts.grid_sample(image, grid, smoothstep=True)
    assert served == expected


def test_which_backend_reasons_are_exact(monkeypatch):
    monkeypatch.delenv("TORCHSAMPLE_BACKEND", raising=False)
    tiny, tiny_grid = torch.rand(1, 4, 8, 8), torch.rand(1, 16, 1, 2) * 2 - 1
    smooth = ts.which_backend(tiny, tiny_grid, smoothstep=True)
    if "compiled" in BACKENDS:
        from torchsample import _extension

        kernels = _extension.kernels_description()
        assert kernels.startswith(("kernels prebuilt in the package", "kernels built just in time"))
        assert _extension.load() in kernels
        assert smooth == ("compiled", f"first choice for this call ({kernels})")
        reason = (
            "compiled: F.grid_sample is faster for calls this small on the CPU "
            "(64 point-channels < 262144 in 2D, measured)"
        )
        assert ts.which_backend(tiny, tiny_grid) == ("native", reason)
        monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
        assert ts.which_backend(tiny, tiny_grid) == (
            "compiled",
            f"selected by TORCHSAMPLE_BACKEND=compiled ({kernels})",
        )
    else:
        assert smooth == ("reference", "first choice for this call")
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "native")
    assert ts.which_backend(tiny, tiny_grid) == ("native", "selected by TORCHSAMPLE_BACKEND=native")


def test_a_call_no_backend_serves_names_every_reason(monkeypatch):
    from types import SimpleNamespace

    from torchsample.ops import _dispatch

    def refusing(reason):
        return SimpleNamespace(
            unavailable_reason=lambda device_type: None, unsupported_reason=lambda *request: reason
        )

    monkeypatch.delenv("TORCHSAMPLE_BACKEND", raising=False)
    monkeypatch.setattr(
        _dispatch, "BACKENDS", {"first": refusing("no good"), "second": refusing("no better")}
    )
    with pytest.raises(
        RuntimeError, match="^no backend can serve this call: first: no good; second: no better$"
    ):
        ts.grid_sample(torch.rand(1, 1, 4, 4), torch.rand(1, 2, 2, 2))


def test_every_backend_serving_a_call_agrees(monkeypatch):
    image = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    grid = torch.rand(1, 3, 4, 2, dtype=torch.float64) * 2.2 - 1.1
    results = {}
    for name in BACKENDS:
        monkeypatch.setenv("TORCHSAMPLE_BACKEND", name)
        results[name] = ts.grid_sample(image, grid, padding_mode="border")
    for name, out in results.items():
        torch.testing.assert_close(out, results["native"], msg=name)


IMG = torch.rand(2, 3, 8, 8)
GRID = torch.rand(2, 4, 4, 2) * 2 - 1


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"input": IMG[0], "grid": GRID},
            ValueError,
            r"input must be a 4D .* got shape \(3, 8, 8\)",
        ),
        ({"input": IMG, "grid": GRID[..., :1]}, ValueError, r"grid must be \(b, h_out, w_out, 2\)"),
        ({"input": IMG, "grid": GRID[:1]}, ValueError, "same batch size, got grid batch 1"),
        ({"input": IMG, "grid": GRID.double()}, TypeError, "same dtype, got input torch.float32"),
        ({"input": IMG, "grid": GRID.long()}, TypeError, "grid must have a floating-point dtype"),
        (
            {"input": IMG, "grid": GRID, "mode": "linear"},
            ValueError,
            "mode must be one of.*'linear'",
        ),
        (
            {"input": IMG, "grid": GRID, "padding_mode": "wrap"},
            ValueError,
            "padding_mode must be one",
        ),
        (
            {"input": IMG, "grid": GRID, "mode": "trilinear"},
            ValueError,
            "trilinear' needs a 5D input",
        ),
        (
            {"input": IMG, "grid": GRID, "mode": "nearest", "smoothstep": True},
            ValueError,
            "smoothstep=True applies to mode='bilinear'.*'nearest'",
        ),
        (
            {"input": IMG, "grid": GRID, "mode": "bicubic", "smoothstep": True},
            ValueError,
            "got mode='bicubic'",
        ),
        (
            {
                "input": torch.rand(1, 1, 2, 2, 2),
                "grid": torch.rand(1, 1, 1, 1, 3),
                "mode": "bicubic",
            },
            ValueError,
            "bicubic' supports 4D inputs only",
        ),
        ({"input": IMG.long(), "grid": GRID}, TypeError, "only be sampled with mode='nearest'"),
        (
            {"input": IMG.numpy(), "grid": GRID},
            TypeError,
            "input must be a torch.Tensor, got ndarray",
        ),
        (
            {"input": IMG, "grid": GRID, "align_corners": None},
            TypeError,
            "align_corners must be a bool",
        ),
        ({"input": IMG, "grid": GRID, "smoothstep": 1}, TypeError, "smoothstep must be a bool"),
        ({"input": IMG, "grid": GRID.to("meta")}, ValueError, "same device, got input on cpu"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        ts.grid_sample(**kwargs)
    with pytest.raises(error, match=message):
        ts.which_backend(**kwargs)


def test_unavailable_compiled_backend_warns_once_and_falls_back(monkeypatch):
    from types import SimpleNamespace

    from torchsample.ops import _dispatch

    broken = SimpleNamespace(unavailable_reason=lambda device_type: "no C++ compiler found")
    monkeypatch.setitem(_dispatch.BACKENDS, "compiled", broken)
    monkeypatch.setattr(_dispatch, "_warned_unavailable", set())
    image, grid = torch.rand(1, 2, 4, 4), torch.rand(1, 3, 3, 2) * 2 - 1
    with pytest.warns(
        RuntimeWarning, match="compiled backend is unavailable for cpu tensors.*no C.. compiler"
    ):
        plain = ts.grid_sample(image, grid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smooth = ts.grid_sample(image, grid, smoothstep=True)
        assert ts.which_backend(image, grid, smoothstep=True).name == "reference"
    torch.testing.assert_close(plain, F.grid_sample(image, grid, align_corners=False))
    assert smooth.shape == plain.shape


@pytest.fixture
def cpu_only_build(monkeypatch):
    """The extension as a CUDA torch without nvcc builds it: CPU kernels only."""
    from torchsample import _extension
    from torchsample.ops import _dispatch

    _extension.load()
    reason = "no CUDA toolkit (nvcc) was found; set CUDA_HOME"
    monkeypatch.setattr(
        _extension,
        "_info",
        {**_extension.build_info(), "cuda": False, "cuda_archs": None, "no_cuda_reason": reason},
    )
    monkeypatch.setattr(_dispatch, "_warned_unavailable", set())
    return reason


def _fake_cuda(*shapes):
    from torch._subclasses.fake_tensor import FakeTensorMode

    # Fake tensors carry a CUDA device without a GPU (or a CUDA torch).
    with FakeTensorMode():
        return [torch.zeros(shape, device="cuda") for shape in shapes]


def test_cuda_requests_on_a_cpu_only_build_go_to_native_with_one_warning(
    cpu_only_build, monkeypatch
):
    from torchsample.ops import native

    image, grid = _fake_cuda((1, 2, 4, 4), (1, 3, 3, 2))
    served = []
    monkeypatch.setattr(native, "grid_sample", lambda *args: served.append(args) or "native")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ts.grid_sample(image, grid) == "native"
        choice = ts.which_backend(image, grid)
        assert ts.grid_sample(image, grid, mode="nearest") == "native"
    assert len(caught) == 1 and caught[0].category is RuntimeWarning
    message = str(caught[0].message)
    assert "compiled backend is unavailable for cuda tensors" in message
    assert "built without CUDA kernels: " + cpu_only_build in message
    assert choice.name == "native"
    assert (
        choice.reason == f"compiled: the extension was built without CUDA kernels: {cpu_only_build}"
    )
    assert len(served) == 2


def test_cuda_requests_on_a_cpu_only_build_leave_cpu_requests_alone(cpu_only_build):
    image, grid = torch.rand(1, 16, 8, 8, 8), torch.rand(1, 1, 32, 32, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ts.which_backend(image, grid).name == "compiled"


def test_smoothstep_cuda_request_on_a_cpu_only_build_goes_to_reference(cpu_only_build):
    image, grid = _fake_cuda((1, 2, 4, 4), (1, 3, 3, 2))
    with pytest.warns(RuntimeWarning, match="built without CUDA kernels"):
        choice = ts.which_backend(image, grid, smoothstep=True)
    assert choice.name == "reference"
    assert choice.reason.startswith("compiled: the extension was built without CUDA kernels")


def test_forced_compiled_backend_on_a_cpu_only_build_says_why(cpu_only_build, monkeypatch):
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    image, grid = _fake_cuda((1, 2, 4, 4), (1, 3, 3, 2))
    with pytest.raises(RuntimeError, match="compiled cannot serve.*without CUDA kernels.*nvcc"):
        ts.which_backend(image, grid)


def test_cuda_requests_use_the_compiled_backend_where_its_build_has_cuda_kernels(monkeypatch):
    from torchsample import _extension

    _extension.load()
    info = {**_extension.build_info(), "cuda": True, "cuda_archs": "9.0", "no_cuda_reason": None}
    monkeypatch.setattr(_extension, "_info", info)
    image, grid = _fake_cuda((1, 2, 4, 4), (1, 3, 3, 2))
    assert ts.which_backend(image, grid).name == "compiled"


def _record_fps(monkeypatch, backend):
    calls = []

    def record(points, lengths, n_samples, *rest):
        calls.append(points)
        return points.new_zeros((points.shape[0], n_samples), dtype=torch.long)

    monkeypatch.setattr(backend, "farthest_point_sample", record)
    return calls


def test_fps_goes_through_the_dispatch_point(monkeypatch):
    from torchsample.ops import compiled, reference

    compiled_calls = _record_fps(monkeypatch, compiled)
    reference_calls = _record_fps(monkeypatch, reference)
    cloud = torch.rand(1, 10, 3)
    ts.points.farthest_point_sample(cloud, 3)
    assert len(compiled_calls) == 1 and not reference_calls
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "reference")
    ts.points.farthest_point_sample(cloud, 3)
    assert len(reference_calls) == 1
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "native")
    with pytest.raises(RuntimeError, match="native cannot serve.*no farthest point sampling"):
        ts.points.farthest_point_sample(cloud, 3)


def test_fps_cuda_request_on_a_cpu_only_build_goes_to_reference(cpu_only_build, monkeypatch):
    from torchsample.ops import farthest_point_indices, reference

    calls = _record_fps(monkeypatch, reference)
    (points, lengths, starts) = _fake_cuda((1, 10, 3), (1,), (1,))
    with pytest.warns(
        RuntimeWarning, match="unavailable for cuda tensors.*" + re.escape(cpu_only_build)
    ):
        farthest_point_indices(points, lengths.long(), 3, starts.long())
    assert len(calls) == 1


def _auto(image, grid, **options):
    return ts.which_backend(image, grid, **options)


@pytest.mark.skipif("compiled" not in BACKENDS, reason="needs the compiled backend")
def test_auto_routes_to_native_where_it_is_faster_on_the_cpu(monkeypatch):
    from torchsample.ops import _dispatch

    monkeypatch.delenv("TORCHSAMPLE_BACKEND", raising=False)
    rgb, points = torch.rand(1, 3, 64, 64), torch.rand(1, 512, 512, 2) * 2 - 1
    features = torch.rand(1, 16, 64, 64)
    volume, points_3d = torch.rand(1, 4, 8, 8, 8), torch.rand(1, 1, 4, 4, 3) * 2 - 1
    # 2D bilinear maps with few channels: F.grid_sample, and the reason says so.
    choice = _auto(rgb, points)
    assert choice.name == "native" and "fewer than 16 channels" in choice.reason
    assert _auto(rgb[:, :1], points).name == "native"
    # Channels or a mode where the compiled kernels won stay compiled.
    assert _auto(features, points).name == "compiled"
    assert _auto(rgb, points, mode="nearest").name == "compiled"
    # F.grid_sample cannot serve smoothstep: nothing to route.
    assert _auto(rgb, points, smoothstep=True).name == "compiled"
    # Tiny calls, 2D or 3D: F.grid_sample.
    choice = _auto(volume, points_3d)
    assert choice.name == "native" and "calls this small" in choice.reason
    assert _auto(features, points[:, :8, :8]).name == "native"
    # The thresholds are where the rule says, in 2D and in 3D.
    n = _dispatch.NATIVE_BELOW_POINT_CHANNELS[2] // 16
    row = torch.rand(1, 1, n, 2) * 2 - 1
    assert _auto(features, row).name == "compiled"
    assert _auto(features, row[:, :, 1:]).name == "native"
    n = _dispatch.NATIVE_BELOW_POINT_CHANNELS[3] // 16
    row = torch.rand(1, 1, 1, n, 3) * 2 - 1
    volume_16 = torch.rand(1, 16, 8, 8, 8)
    assert _auto(volume_16, row).name == "compiled"
    choice = _auto(volume_16, row[..., 1:, :])
    assert choice.name == "native" and f"< {n * 16} in 3D" in choice.reason
    # A forced backend is not second-guessed.
    monkeypatch.setenv("TORCHSAMPLE_BACKEND", "compiled")
    assert _auto(rgb, points).name == "compiled"


@pytest.mark.skipif("compiled" not in BACKENDS, reason="needs the compiled backend")
def test_routing_changes_no_value():
    rgb = torch.rand(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand(2, 5, 7, 2, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert ts.which_backend(rgb, grid).name == "native"
    out = ts.grid_sample(rgb, grid, padding_mode="border")
    expected = torch.nn.functional.grid_sample(
        rgb, grid, padding_mode="border", align_corners=False
    )
    assert torch.equal(out, expected)
