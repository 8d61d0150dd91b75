"""Decoding wire payloads into contracts with errors that say which field and why."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from plantmesh.topics import DlqReason

M = TypeVar("M", bound=BaseModel)
ROOT = "<root>"
"""Where a problem of the whole object is located in `describe_validation_error`'s lines."""


class DecodeError(ValueError):
    """A payload that does not match its contract. `reason` is short and stable enough to count
    by (e.g. in DLQ metrics); `details` lists every offending field."""

    def __init__(self, model: str, reason: DlqReason, details: list[str]) -> None:
        self.model = model
        self.reason = reason
        self.details = details
        super().__init__(f"invalid {model}: " + "; ".join(details))


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or ROOT


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: `readings[3].value: Input should be a finite number (got nan)`."""
    lines = []
    for item in error.errors(include_url=False):
        where = _location(tuple(item["loc"]))
        got = item.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"{where}: {item['msg']} (got {shown})")
    return lines


def decode(model: type[M], payload: bytes | str) -> M:
    """Validate JSON bytes against `model`; raise DecodeError naming each bad field."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        kinds = {item["type"] for item in exc.errors(include_url=False)}
        reason = DlqReason.MALFORMED_JSON if "json_invalid" in kinds else DlqReason.SCHEMA_MISMATCH
        raise DecodeError(model.__name__, reason, describe_validation_error(exc)) from None


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()
