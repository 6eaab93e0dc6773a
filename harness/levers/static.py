"""Preallocated (static) KV cache: fixed shapes, the precondition for compile and CUDA graphs.

Without compile it is slower on the CPU (attention spans the whole preallocated length);
the ladder shows that rather than hiding it.
"""

import dataclasses

from harness.levers import Lever, LeverNotInEffect


def configure(plan):
    return dataclasses.replace(plan, cache="static")


def evidence(session) -> dict:
    from transformers import StaticCache

    cache = session.cache
    if not isinstance(cache, StaticCache):
        raise LeverNotInEffect(f"static: the run used {type(cache).__name__}, not StaticCache")
    return {"cache_class": type(cache).__name__, "max_cache_len": session.max_cache_len}


LEVER = Lever(
    name="static",
    slot="cache",
    summary="preallocated static KV cache",
    configure=configure,
    brief=lambda found: f"{found['cache_class']}[{found['max_cache_len']}]",
    evidence=evidence,
    needs=frozenset({"kv_cache"}),
)
