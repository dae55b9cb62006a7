"""Keep heavy work off the event loop: decoding, predicting and encoding large payloads
run on the loop's thread pool, so health probes answer while a big request is served.
Small payloads stay on the loop, where they cost less than a thread hop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Bodies and answers up to this size are decoded / encoded on the event loop.
INLINE_BYTES = 64 * 1024
# Batches up to this many rows run a built-in flavour's predict on the event loop.
INLINE_ROWS = 1024


async def off_loop(size: int, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)``: inline when ``size`` is small, else on a thread."""
    if size <= INLINE_BYTES:
        return function(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))
