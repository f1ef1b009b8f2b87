import math

import pytest
import torch

from torchsample.encoding import FourierFeatures, fourier_features


def test_fourier_features_match_the_formula_elementwise():
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(5, 3, 3, generator=g, dtype=torch.float64) * 2 - 1
    B = torch.randn(3, 4, generator=g, dtype=torch.float64)
    out = fourier_features(coords, B)
    assert out.shape == (5, 3, 8)
    for index in torch.cartesian_prod(torch.arange(5), torch.arange(3)).tolist():
        x = coords[tuple(index)].tolist()
        for j in range(4):
            phase = 2 * math.pi * sum(x[k] * B[k, j].item() for k in range(3))
            assert out[tuple(index) + (j,)].item() == pytest.approx(math.cos(phase), abs=1e-12)
            assert out[tuple(index) + (4 + j,)].item() == pytest.approx(math.sin(phase), abs=1e-12)


def test_fourier_features_known_values():
    B = torch.tensor([[1.0, 0.5]])
    out = fourier_features(torch.tensor([[0.25], [-0.5]]), B)
    expected = torch.tensor(
        [
            [0.0, math.cos(math.pi / 4), 1.0, math.sin(math.pi / 4)],
            [-1.0, 0.0, 0.0, -1.0],
        ]
    )
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_fourier_features_are_differentiable_twice():
    g = torch.Generator().manual_seed(1)
    coords = torch.rand(4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    B = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(fourier_features, (coords, B))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_shape_dtype_and_frequency_statistics(dtype):
    encode = FourierFeatures(3, 4096, scale=7.0, generator=torch.Generator().manual_seed(2))
    assert encode.B.shape == (3, 4096) and encode.out_dims == 8192
    assert encode.B.std().item() == pytest.approx(7.0, rel=0.03)
    assert encode.B.mean().item() == pytest.approx(0.0, abs=0.2)
    out = encode(torch.rand(2, 10, 3, dtype=dtype))
    assert out.shape == (2, 10, 8192) and out.dtype == dtype


def test_module_uses_fourier_features_of_its_buffer():
    encode = FourierFeatures(2, 16, generator=torch.Generator().manual_seed(3))
    coords = torch.rand(7, 2)
    torch.testing.assert_close(encode(coords), fourier_features(coords, encode.B))


def test_frequencies_are_a_buffer_that_round_trips_through_the_state_dict():
    encode = FourierFeatures(2, 8, generator=torch.Generator().manual_seed(4))
    assert "B" in encode.state_dict() and list(encode.parameters()) == []
    restored = FourierFeatures(2, 8, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(restored.B, encode.B)
    restored.load_state_dict(encode.state_dict())
    assert torch.equal(restored.B, encode.B)


def test_generator_makes_frequencies_reproducible():
    def make(seed):
        return FourierFeatures(2, 8, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(make(6).B, make(6).B)
    assert not torch.equal(make(6).B, make(7).B)


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"rows of B \(2\), got coords with shape \(4, 3\)"):
        fourier_features(torch.zeros(4, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="B must have 2 dimensions"):
        fourier_features(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(TypeError, match="coords must have a floating-point dtype"):
        fourier_features(torch.zeros(4, 2, dtype=torch.long), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="same dtype, got coords torch.float64 and B torch.float32"):
        fourier_features(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="scale must be a positive number, got 0"):
        FourierFeatures(2, 8, scale=0)
    with pytest.raises(ValueError, match="n_features must be >= 1"):
        FourierFeatures(2, 0)
