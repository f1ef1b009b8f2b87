"""Kernels prebuilt in a wheel: loaded when they match, a just-in-time build otherwise.

``scripts/wheel_check.sh`` builds a real wheel and runs the whole suite
against it with no compiler; these tests pin the loader's decisions with a
manifest in a temporary package directory.
"""

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch

import torchsample
from torchsample import _extension

SETUP_PY = Path(__file__).resolve().parents[1] / "setup.py"


@pytest.fixture
def package(monkeypatch, tmp_path):
    """A package directory with a prebuilt library and its manifest, nothing loaded for real."""
    monkeypatch.setattr(_extension, "PACKAGE", tmp_path)
    monkeypatch.setattr(_extension, "PREBUILT_MANIFEST", tmp_path / "_kernels.json")
    monkeypatch.setattr(_extension, "_warned_mismatch", False)
    monkeypatch.delenv(_extension.KERNELS_ENV_VAR, raising=False)
    loaded, built = [], []
    monkeypatch.setattr(_extension, "_load_library", loaded.append)

    def jit_build():
        built.append(True)
        return "jit.so", {"cuda": False, "cuda_archs": None, "no_cuda_reason": "no CUDA"}

    monkeypatch.setattr(_extension, "_jit_build_and_load", jit_build)
    (tmp_path / "_kernels.abi3.so").write_bytes(b"kernels")
    manifest = _extension.write_manifest(
        tmp_path / "_kernels.json", "_kernels.abi3.so", cuda_kernels=False
    )
    return {"dir": tmp_path, "manifest": manifest, "loaded": loaded, "built": built}


def _rewrite(package, **changes):
    manifest = {**package["manifest"], **changes}
    (package["dir"] / "_kernels.json").write_text(json.dumps(manifest))


def test_manifest_records_the_build(package):
    manifest = _extension.read_manifest(package["dir"] / "_kernels.json")
    assert manifest == package["manifest"]
    assert manifest["torch"] == torch.__version__ and manifest["cuda"] == torch.version.cuda
    assert manifest["sources_sha256"] == _extension.sources_digest()
    assert _extension.prebuilt_mismatch(manifest) is None


def test_matching_prebuilt_kernels_are_loaded_and_nothing_is_built(package):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path, info = _extension._build_and_load()
    assert Path(path) == package["dir"] / "_kernels.abi3.so"
    assert package["loaded"] == [Path(path)] and package["built"] == []
    assert info["source"] == "prebuilt" and info["cuda"] is False


def test_another_torch_release_warns_once_and_builds_just_in_time(package):
    _rewrite(package, torch="2.4.1+cpu")
    with pytest.warns(RuntimeWarning, match=r"built for torch 2\.4\.1\+cpu .*just in time"):
        path, info = _extension._build_and_load()
    assert (path, info["source"]) == ("jit.so", "jit")
    assert package["loaded"] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per process
        _extension._build_and_load()
    assert package["built"] == [True, True]


def test_only_the_release_and_cuda_version_must_match(package):
    # 2.13.0 from PyPI and 2.13.0+cpu from the PyTorch index: the same C++ ABI.
    _rewrite(package, torch=torch.__version__.split("+")[0] + "+anotherindex")
    assert _extension.prebuilt_mismatch(_extension.read_manifest()) is None
    _rewrite(package, cuda="11.8" if torch.version.cuda is None else None)
    assert "the installed torch is" in _extension.prebuilt_mismatch(_extension.read_manifest())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sources_sha256": "0" * 64}, "other sources than those installed"),
        ({"library": "gone.so"}, "gone.so is missing"),
    ],
)
def test_stale_or_missing_prebuilt_kernels_are_not_loaded(package, change, message):
    _rewrite(package, **change)
    with pytest.warns(RuntimeWarning, match=message):
        assert _extension._build_and_load()[1]["source"] == "jit"
    assert package["loaded"] == []


def test_a_library_that_fails_to_load_falls_back(package, monkeypatch):
    def refuse(library):
        raise OSError(f"{library}: undefined symbol: _ZN3c104impl")

    monkeypatch.setattr(_extension, "_load_library", refuse)
    with pytest.warns(RuntimeWarning, match="failed to load .*undefined symbol"):
        assert _extension._build_and_load()[1]["source"] == "jit"


def test_jit_request_ignores_the_prebuilt_kernels(package, monkeypatch):
    monkeypatch.setenv(_extension.KERNELS_ENV_VAR, "jit")
    assert _extension._build_and_load()[1]["source"] == "jit"
    assert package["loaded"] == []


def test_prebuilt_request_never_builds(package, monkeypatch):
    monkeypatch.setenv(_extension.KERNELS_ENV_VAR, "prebuilt")
    assert _extension._build_and_load()[1]["source"] == "prebuilt"
    _rewrite(package, torch="2.4.1")
    with pytest.raises(RuntimeError, match=r"TORCHSAMPLE_KERNELS=prebuilt, but .*torch 2\.4\.1"):
        _extension._build_and_load()
    (package["dir"] / "_kernels.json").unlink()
    with pytest.raises(RuntimeError, match="has no prebuilt kernels"):
        _extension._build_and_load()
    assert package["built"] == []


def test_unknown_kernel_source_is_an_error(package, monkeypatch):
    monkeypatch.setenv(_extension.KERNELS_ENV_VAR, "wheel")
    with pytest.raises(ValueError, match="must be one of auto, prebuilt, jit, got 'wheel'"):
        _extension._build_and_load()


def test_cpu_only_prebuilt_kernels_say_so_under_a_cuda_torch(package, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    _rewrite(package, cuda="12.8", no_cuda_reason="no CUDA toolkit (nvcc) was found")
    info = _extension._build_and_load()[1]
    assert info["cuda"] is False
    assert "built without CUDA kernels (no CUDA toolkit" in info["no_cuda_reason"]
    assert "TORCHSAMPLE_KERNELS=jit" in info["no_cuda_reason"]


def test_editable_install_has_no_prebuilt_kernels():
    # The suite runs from a checkout or from an installed wheel.
    source = _extension.build_info()["source"]
    assert source == ("prebuilt" if _extension.read_manifest() is not None else "jit")


@pytest.fixture
def setup_module():
    if not SETUP_PY.exists():
        pytest.skip("setup.py is in the source checkout only")
    spec = importlib.util.spec_from_file_location("torchsample_setup", SETUP_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # builds nothing: setup() runs only as __main__
    return module


def test_wheel_version_label_names_torch_and_cuda(setup_module):
    assert setup_module.local_label("2.13.0+cpu", None) == "pt213cpu"
    assert setup_module.local_label("2.13.0", "12.8") == "pt213cu128"
    assert setup_module.BASE_VERSION == torchsample.__version__


def test_no_compiler_builds_a_wheel_without_kernels(setup_module, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "false")
    monkeypatch.delenv(setup_module.ENV_VAR, raising=False)
    assert setup_module._why_no_kernels() == "the C++ compiler false does not run"
    assert setup_module._kernels_requested() is False
    assert "building without kernels" in capsys.readouterr().err
    monkeypatch.setenv(setup_module.ENV_VAR, "1")
    with pytest.raises(SystemExit, match="TORCHSAMPLE_BUILD_KERNELS=1 but the C"):
        setup_module._kernels_requested()
    monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
    monkeypatch.setenv(setup_module.ENV_VAR, "auto")
    assert "no C++ compiler found" in setup_module._why_no_kernels()


def test_kernels_can_be_left_out_on_request(setup_module, monkeypatch):
    monkeypatch.setenv(setup_module.ENV_VAR, "0")
    assert setup_module._kernels_requested() is False
    monkeypatch.setenv(setup_module.ENV_VAR, "yes")
    with pytest.raises(SystemExit, match="must be auto, 0 or 1"):
        setup_module._kernels_requested()
