"""Builds and imports that degrade instead of breaking (torchsample._extension).

A process killed mid-build, a failed CUDA build, a lock left behind, a
platform without ``fcntl``: each must leave torchsample importable and the
next process able to load or build the extension.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from torchsample import _extension

# The just-in-time build itself, whatever kernels the installation ships.
JIT = {_extension.KERNELS_ENV_VAR: "jit"}


def _run(code, timeout=300, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_import_and_sample_without_fcntl():
    # fcntl does not exist on Windows; a None entry makes its import fail.
    code = (
        "import sys; sys.modules['fcntl'] = None\n"
        "import torch, torchsample as ts\n"
        "image = torch.arange(4.0).view(1, 1, 2, 2)\n"
        "print(ts.grid_sample(image, torch.zeros(1, 1, 1, 2)).item())\n"
        "print(ts.which_backend(image, torch.zeros(1, 1, 1, 2)).name)\n"
    )
    result = _run(code, TORCHSAMPLE_BACKEND="reference")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.5", "reference"]


def test_import_loads_no_extension():
    # Built and loaded on first use only: importing must work where it cannot.
    code = "import torch, torchsample\nprint(sorted(torch.ops.loaded_libraries))\n"
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_extension_loads_without_fcntl():
    code = (
        "import sys; sys.modules['fcntl'] = None\n"
        "from torchsample import _extension\n"
        "print(_extension.unavailable_reason())\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _acquire_within(path, seconds):
    """Whether _build_lock(path) is acquired within ``seconds`` (in a thread)."""
    acquired = threading.Event()

    def take():
        with _extension._build_lock(path):
            acquired.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return acquired.wait(seconds), thread


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    lock = tmp_path / "build.lock"
    lock.write_text(f"{_extension.socket.gethostname()}-{_dead_pid()}")
    taken, thread = _acquire_within(lock, 5)
    assert taken
    thread.join(5)
    assert not lock.exists()  # released after use


def test_empty_lock_is_taken_over_once_old(tmp_path):
    lock = tmp_path / "build.lock"
    lock.touch()
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert _acquire_within(lock, 5)[0]


def test_live_lock_is_waited_for(tmp_path):
    lock = tmp_path / "build.lock"
    with _extension._build_lock(lock):
        assert lock.read_text() == _extension._owner_tag()
        taken, thread = _acquire_within(lock, 0.5)
        assert not taken
    thread.join(5)
    assert not thread.is_alive()


def test_cuda_architectures_are_part_of_the_cache_key(monkeypatch):
    monkeypatch.setattr(_extension, "_cuda_home", lambda: "/usr/local/cuda")
    directories = set()
    for archs in ("8.0", "9.0", "8.0;9.0"):
        monkeypatch.setattr(_extension, "cuda_arch_list", lambda archs=archs: archs)
        plan = _extension.build_plan()
        assert plan["cuda"] and plan["cuda_archs"] == archs
        directories.add(plan["directory"])
    assert len(directories) == 3


def test_cuda_arch_list_sources(monkeypatch):
    import torch

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6+PTX")
    assert _extension.cuda_arch_list() == "8.6+PTX"
    # No list and no GPU visible: the architectures torch was built for.
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "sm_90a", "compute_90"])
    assert _extension.cuda_arch_list() == "8.0;9.0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: [(9, 0), (8, 6)][i])
    assert _extension.cuda_arch_list() == "8.6;9.0"


def test_failed_cuda_build_still_loads_the_cpu_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHSAMPLE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_extension, "_cuda_home", lambda: "/usr/local/cuda")
    monkeypatch.setattr(_extension, "cuda_arch_list", lambda: "9.0")
    compiled, loaded = [], []

    def compile_(plan, staging):
        compiled.append(plan["cuda"])
        if plan["cuda"]:
            raise RuntimeError("Error building extension: nvcc fatal: unsupported gpu architecture")
        library = staging / plan["library"].name
        library.write_bytes(b"CPU kernels")
        return library

    monkeypatch.setattr(_extension, "_compile", compile_)
    monkeypatch.setattr(_extension, "_load_library", loaded.append)
    path, info = _extension._jit_build_and_load()
    assert compiled == [True, False]
    assert loaded == [Path(path)] and Path(path).read_bytes() == b"CPU kernels"
    assert Path(path) == _extension.build_plan(with_cuda=False)["library"]
    assert info["cuda"] is False and info["cuda_archs"] is None
    assert "CUDA build failed" in info["no_cuda_reason"]
    assert "nvcc fatal: unsupported gpu architecture" in info["no_cuda_reason"]
    # The next process neither retries the CUDA build nor rebuilds the CPU one.
    compiled.clear()
    assert _extension._jit_build_and_load() == (path, info)
    assert compiled == []


@pytest.mark.slow
@pytest.mark.compiler
def test_killed_build_is_recovered_by_the_next_process(tmp_path):
    # -O0 (after the default -O3) keeps the two builds short.
    env = {
        **os.environ,
        **JIT,
        "TORCHSAMPLE_CACHE_DIR": str(tmp_path),
        "TORCHSAMPLE_EXTRA_CFLAGS": "-O0",
    }
    build = [sys.executable, "-m", "torchsample.build"]
    first = subprocess.Popen(
        build,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*/staging-*/build.ninja")):
            assert first.poll() is None and time.monotonic() < deadline, "the build never started"
            time.sleep(0.1)
        time.sleep(2)  # compiling now
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the compilers too
        first.wait()
    (directory,) = tmp_path.iterdir()
    assert (directory / "build.lock").exists()  # left behind by the killed build
    assert not list(directory.glob("*.so"))

    second = subprocess.run(
        build, check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    library = Path(second.stdout.split("library: ")[1].split()[0])
    assert library.parent == directory and library.stat().st_size > 0
    assert sorted(p.name for p in directory.iterdir()) == [library.name]


@pytest.mark.slow
@pytest.mark.compiler
def test_processes_starting_together_build_once(tmp_path):
    env = {
        **os.environ,
        **JIT,
        "TORCHSAMPLE_CACHE_DIR": str(tmp_path),
        "TORCHSAMPLE_EXTRA_CFLAGS": "-O0",
    }
    build = [sys.executable, "-m", "torchsample.build"]
    processes = [
        subprocess.Popen(build, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    # One compiled while the other waited on the lock, then loaded its library.
    assert sum("compiling the CPU extension" in err for _, err in outputs) == 1
    libraries = {out.split("library: ")[1].split()[0] for out, _ in outputs}
    assert len(libraries) == 1
