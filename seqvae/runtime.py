"""The machine at hand: which device runs the model, its numeric precision (bfloat16 or, on
CUDA, float16 autocast) and the memory allocator. Nothing here changes what a model is, only how fast it runs."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from typing import ContextManager

import torch

from .errors import ConfigError


def native_bf16(device: torch.device) -> bool:
    """True where bfloat16 matrix products run natively: a GPU that supports them, or a CPU
    with AVX-512 BF16 or AMX (oneDNN's own test). Elsewhere bfloat16 is emulated and slow."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The dtype of matrix products for train.precision on device: float32, bfloat16, or
    (CUDA only, with a gradient scaler) float16."""
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise ConfigError(f"train.precision = 'bf16' is not supported on {device.type}")
        return torch.bfloat16
    if name == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.precision = 'fp16' needs a CUDA device (it trains with a "
                              f"gradient scaler there); on {device.type} use bf16 or fp32")
        return torch.float16
    if name == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, got {name!r}")


def precision_name(dtype: torch.dtype) -> str:
    """The train.precision name of a product dtype: fp32, bf16 or fp16."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype) -> ContextManager:
    """Mixed precision for a forward pass: products in dtype, nothing at all for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse instead of returning them to the OS.

    By default glibc hands every block over 32 MB (and the top of the heap) back to the
    kernel when it is freed, so each training step faults the same hundreds of megabytes of
    activations in again, page by page. Measured on a 2-core VM (molsets' architecture, bf16,
    6 steps): 8.8M page faults without this and 0.97M with it, 135 -> 199 molecules/s. The
    process keeps its peak memory instead. Returns False where the C library is not glibc
    (nothing is changed there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only: musl's mallopt does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    largest = ctypes.c_int(2**31 - 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, largest)) and bool(mallopt(_M_TRIM_THRESHOLD, largest))


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA device here")
    return device
