"""API tokens: made by an operator of plantmesh (`plantmesh alerting token create`), shown once,
kept as their SHA-256 (a token is 32 random bytes, so a plain hash is enough: nothing to guess
by brute force), looked up on every request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from alerting.api.roles import ALL_PLANTS, Role
from alerting.records.schema import api_tokens

PREFIX = "pmt_"


class TokenError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    plants: list[str]

    @property
    def actor(self) -> str:
        return f"user:{self.name}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    engine: AsyncEngine, name: str, role: Role, plants: list[str], now: datetime
) -> str:
    if not plants:
        raise TokenError(f"a token needs a plant scope: --plant NAME, or --plant '{ALL_PLANTS}'")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(api_tokens).values(
                    name=name,
                    role=role.value,
                    plants=sorted(set(plants)),
                    token_hash=digest(token),
                    created_at=now,
                )
            )
    except IntegrityError:
        raise TokenError(f"a token named {name!r} exists already") from None
    return token


async def revoke_token(engine: AsyncEngine, name: str, now: datetime) -> bool:
    async with engine.begin() as conn:
        done = await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return bool(done.rowcount)


async def principal_of(engine: AsyncEngine, token: str) -> Principal | None:
    query = select(api_tokens).where(
        api_tokens.c.token_hash == digest(token), api_tokens.c.revoked_at.is_(None)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else Principal(row.name, Role(row.role), list(row.plants))


async def list_tokens(engine: AsyncEngine) -> list[tuple[str, str, list[str], bool]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_tokens).order_by(api_tokens.c.name))).all()
    return [(r.name, r.role, list(r.plants), r.revoked_at is None) for r in rows]
