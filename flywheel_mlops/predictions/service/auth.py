"""Optional bearer-token authentication for the service's /v1 endpoints, as OpenAPI shows it.

The check itself runs in the edge middleware (`flywheel_mlops.edge.auth`, the parser the
predictor uses too), before the body is read, so an unauthenticated request gets 401 whatever
its body; this dependency declares the scheme and checks again with the same parser.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flywheel_mlops.edge.auth import bearer_problem


def bearer_guard(token: str) -> Callable[..., Awaitable[None]]:
    """A dependency that requires `Authorization: Bearer <token>`; lets all through if empty."""
    scheme = HTTPBearer(auto_error=False, description="Set when FLYWHEEL_API_TOKEN is configured.")

    async def guard(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        problem = bearer_problem(request.scope["headers"], token)
        if problem is not None:
            raise HTTPException(
                401,
                f"header Authorization: Bearer <token> is required; got {problem}",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard
