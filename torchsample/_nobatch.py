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

F = TypeVar("F", bound=Callable)


def _drop_batch(result):
    if isinstance(result, torch.Tensor):
        return result.squeeze(0)
    if isinstance(result, tuple):
        return tuple(_drop_batch(r) for r in result)
    return result


def with_nobatch(*tensor_args: str, batch_arg: str | None = None) -> Callable[[F], F]:
    """Give a batched function a ``nobatch`` attribute.

    Parameters
    ----------
    tensor_args
        Names of tensor arguments that get a leading batch dimension of one.
    batch_arg
        Name of an integer batch-size argument that is set to one.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        # ``nobatch`` fixes the batch size, so it is not the caller's to pass.
        public = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name != batch_arg]
        )

        @functools.wraps(fn)
        def nobatch(*args, **kwargs):
            arguments = public.bind(*args, **kwargs).arguments
            for name in tensor_args:
                value = arguments.get(name)
                if isinstance(value, torch.Tensor):
                    arguments[name] = value.unsqueeze(0)
            if batch_arg is not None:
                arguments[batch_arg] = 1
            bound = signature.bind_partial()
            bound.arguments.update(
                (name, arguments[name]) for name in signature.parameters if name in arguments
            )
            return _drop_batch(fn(*bound.args, **bound.kwargs))

        nobatch.__signature__ = public
        nobatch.__doc__ = (
            f"Unbatched form of ``{fn.__qualname__}``: "
            "the same arguments without the batch dimension"
            + (f" (and without ``{batch_arg}``)" if batch_arg else "")
            + "; returns results without it."
        )
        fn.nobatch = nobatch  # type: ignore[attr-defined]
        return fn

    return decorate
