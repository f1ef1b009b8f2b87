"""The ``.nobatch`` form of batched functions.

Inside a ``Dataset.__getitem__`` tensors carry no batch dimension. Rather
than a second copy of every function, ``with_nobatch`` attaches a ``nobatch``
attribute that adds a batch dimension of one to the named tensor arguments
(or asks for a batch of one), calls the batched function and removes the
batch dimension from what it returns.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

import torch

from ._checks import check_positive_int

F = TypeVar("F", bound=Callable)


def _drop_batch(result):
    if isinstance(result, torch.Tensor):
        return result.squeeze(0)
    if isinstance(result, tuple):
        return tuple(_drop_batch(r) for r in result)
    return result


def with_nobatch(*tensor_args: str, batch_arg: str | None = None) -> Callable[[F], F]:
    """Give a batched function a ``nobatch`` attribute.

    The ``nobatch`` form takes the same arguments as the function, as in the
    original torchsample, so ``full.nobatch(1, (w, h))`` is ``full(1, (w, h))[0]``.

    Parameters
    ----------
    tensor_args
        Names of tensor arguments that get a leading batch dimension of one.
    batch_arg
        Name of an integer batch-size argument: the ``nobatch`` form still
        takes it, and calls the function with a batch of one whatever it is.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def nobatch(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name in tensor_args:
                value = bound.arguments.get(name)
                if isinstance(value, torch.Tensor):
                    bound.arguments[name] = value.unsqueeze(0)
            if batch_arg is not None:
                check_positive_int(batch_arg, bound.arguments.get(batch_arg), allow_zero=True)
                bound.arguments[batch_arg] = 1
            return _drop_batch(fn(*bound.args, **bound.kwargs))

        nobatch.__doc__ = (
            f"Unbatched form of ``{fn.__qualname__}``: the same arguments"
            + (f" (``{batch_arg}`` is ignored)" if batch_arg else "")
            + " with tensors that have no batch dimension; returns results without it."
        )
        fn.nobatch = nobatch  # type: ignore[attr-defined]
        return fn

    return decorate
