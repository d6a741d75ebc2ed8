"""The price table: USD per million tokens per provider and model (Decimal, never float).

Cost of one task = ``input × p_input + cache_read × p_cache_read + cache_creation × p_cache_write +
output × p_output`` (÷ 10⁶), where ``input`` is the *uncached* input (``TokenUsage.input``): cached
input is billed once, at the cache-read rate, never also as input.

Lookup: the provider's model by exact name, else by a ``match`` substring of the model name, else
the provider's ``default`` model (when the profile names no model); other providers' ``match``
entries are tried last. Unknown → unpriced (counted as 0 USD and reported as such).
"""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

MILLION = Decimal(1_000_000)
FIELDS = ("input", "output", "cache_read", "cache_write")


class PriceTableError(ValueError):
    """A user price-table override that cannot be read; the message names the file."""


class PriceTable:
    def __init__(self, data: dict[str, Any]) -> None:
        self.providers: dict[str, dict[str, Any]] = {}
        self.merge(data)

    @classmethod
    def shipped(cls, override: Path | None = None) -> PriceTable:
        data = json.loads(resources.files("aegis_budget").joinpath("prices.json").read_text())
        table = cls(data)
        if override is not None and override.is_file():
            try:
                extra = json.loads(override.read_text())
                if not isinstance(extra, dict):
                    raise ValueError("the top level must be an object with a 'providers' key")
                table.merge(extra)
            except (ValueError, TypeError, AttributeError, decimal.InvalidOperation) as exc:
                raise PriceTableError(f"{override}: not a valid price table ({exc}); fix or remove it") from None
        return table

    def merge(self, data: dict[str, Any]) -> None:
        for provider, spec in (data.get("providers") or {}).items():
            entry = self.providers.setdefault(provider, {"default": None, "models": {}})
            if "default" in spec:
                entry["default"] = spec["default"]
            for model, price in (spec.get("models") or {}).items():
                entry["models"][model] = {**{f: Decimal(str(price.get(f, "0"))) for f in FIELDS},
                                          "match": tuple(price.get("match") or ())}

    def add(self, provider: str, model: str, *, input: str, output: str, cache_read: str = "0",
            cache_write: str = "0", default: bool = False) -> None:
        self.merge({"providers": {provider: {**({"default": model} if default else {}), "models": {model: {
            "input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write}}}}})

    def lookup(self, provider: str | None, model: str | None) -> tuple[str, dict[str, Any]] | None:
        entry = self.providers.get(provider or "")
        if entry is not None:
            models = entry["models"]
            if model and model in models:
                return model, models[model]
            if model:
                for name, price in models.items():
                    if any(m in model for m in price["match"]):
                        return name, price
            elif entry.get("default") in models:
                return entry["default"], models[entry["default"]]
        if model:
            for other in self.providers.values():
                for name, price in other["models"].items():
                    if name == model or any(m in model for m in price["match"]):
                        return name, price
        return None

    def cost(self, provider: str | None, model: str | None, usage: dict[str, int]) -> tuple[Decimal, str] | None:
        """(USD, priced model name) or None when the model is not in the table."""
        found = self.lookup(provider, model)
        if found is None:
            return None
        name, p = found
        usd = (Decimal(usage.get("input", 0)) * p["input"] + Decimal(usage.get("cache_read", 0)) * p["cache_read"]
               + Decimal(usage.get("cache_creation", 0)) * p["cache_write"]
               + Decimal(usage.get("output", 0)) * p["output"]) / MILLION
        return usd, name
