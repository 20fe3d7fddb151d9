"""What Moonshot's account tiers allow, and what an answer costs: plain data, read by settings.

No Django imports beyond the configuration error: settings import this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

# Moonshot's published rate limits per account tier (platform.moonshot.cn, "Rate limits";
# not in the seeds): tier -> (concurrent requests, requests per minute). Tier 0 is a new
# account; the tier rises with the total ever topped up.
MOONSHOT_TIER_LIMITS: dict[int, tuple[int, int]] = {
    0: (1, 3),
    1: (50, 200),
    2: (100, 500),
    3: (200, 5000),
    4: (400, 5000),
    5: (1000, 10000),
}

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """A model's price per million tokens: input (not cached), output, cached input."""

    prompt: Decimal
    completion: Decimal
    cached: Decimal

    def cost(self, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Decimal:
        cached = min(cached_tokens, prompt_tokens)
        total = (
            (prompt_tokens - cached) * self.prompt
            + cached * self.cached
            + completion_tokens * self.completion
        )
        return total / _MILLION


def model_prices(value: str, *, name: str) -> dict[str, Price]:
    """Parse `DOCQA_MODEL_PRICES`: JSON `{"model": [in, out, cached?]}` or `model=in/out[/cached];…`.

    A missing cached price means cached input costs what input costs.
    """
    value = value.strip()
    if not value:
        return {}
    try:
        if value.startswith("{"):
            items = [(model, list(parts)) for model, parts in json.loads(value).items()]
        else:
            items = []
            for entry in value.replace("\n", ";").split(";"):
                if not entry.strip():
                    continue
                model, _, numbers = entry.partition("=")
                items.append((model.strip(), numbers.split("/")))
        prices = {}
        for model, parts in items:
            numbers = [Decimal(str(part).strip()) for part in parts]
            if not model or len(numbers) not in (2, 3) or any(n < 0 for n in numbers):
                raise ValueError(model)
            prompt, completion = numbers[0], numbers[1]
            prices[model] = Price(prompt, completion, numbers[2] if len(numbers) == 3 else prompt)
        return prices
    except (ValueError, TypeError, AttributeError, InvalidOperation) as exc:
        raise ImproperlyConfigured(
            f"{name} must be 'model=input/output[/cached];…' prices per million tokens "
            f'(or JSON {{"model": [input, output, cached]}}), not {value!r}.'
        ) from exc
