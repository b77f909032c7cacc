"""What tokens cost at the operator's prices: a call's real cost, and the most the next can cost."""

from __future__ import annotations

from pipeline.config import Price
from pipeline.models import Usage

PER_MILLION = 1_000_000


def price_usage(  # noqa: PLR0913 - keyword-only, each named at the call
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    price: Price | None,
) -> Usage:
    """Token counts of one call and their cost in USD; no price (a local model) costs nothing."""
    cost = 0.0
    if price is not None:
        cache_write = price.cache_write if price.cache_write is not None else 1.25 * price.input
        cache_read = price.cache_read if price.cache_read is not None else 0.1 * price.input
        cost = (
            input_tokens * price.input
            + cache_creation_input_tokens * cache_write
            + cache_read_input_tokens * cache_read
            + output_tokens * price.output
        ) / PER_MILLION
    return Usage(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        cost_usd=cost,
    )


CHARS_PER_TOKEN = 3  # fewer than any tokenizer averages, so the estimate errs high


def estimate_cost(price: Price | None, request_chars: int, max_tokens: int) -> float:
    """The most the next call can cost: every input token at the dearer of the input and
    cache-write rates, and every allowed output token."""
    if price is None:
        return 0.0
    cache_write = price.cache_write if price.cache_write is not None else 1.25 * price.input
    tokens_in = request_chars // CHARS_PER_TOKEN + 1
    return (tokens_in * max(price.input, cache_write) + max_tokens * price.output) / PER_MILLION
