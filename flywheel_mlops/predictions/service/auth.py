"""Optional bearer-token authentication for the service's /v1 endpoints."""

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer


def bearer_guard(token: str) -> Callable[..., Awaitable[None]]:
    """A dependency that requires `Authorization: Bearer <token>`; lets all through if empty."""
    scheme = HTTPBearer(auto_error=False, description="Set when FLYWHEEL_API_TOKEN is configured.")

    async def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        if not token:
            return
        if credentials is None:
            raise HTTPException(
                401,
                "header Authorization: Bearer <token> is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                401,
                "the bearer token is not the one configured",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    return guard
