"""Airflow's authentication and authorization for the plugin's endpoints.

Airflow mounts plugin apps without protecting them, so every route depends on :func:`viewer`
or :func:`editor`. The user is resolved exactly as Airflow's own API does (``get_user``: a bearer
token, else the UI's ``_token`` cookie) and checked with the configured auth manager:

- reading is the custom view ``Anomalies`` (method GET);
- giving a verdict or setting a snooze changes records of the nightly DAG (and what it alerts),
  so it also needs edit rights on that DAG (``is_authorized_dag`` PUT: the SimpleAuthManager's
  USER role and above, not VIEWER).

A browser without a session is sent to Airflow's login page and back; API clients get 401.
A POST must come from the same origin unless a bearer token authenticated it (the cookie is
SameSite=Lax; the check also covers browsers that ignore it). Merely having an ``Authorization``
header is not enough: browsers add ``Basic`` or ``Negotiate`` credentials by themselves behind
such proxies, and those requests are still identified by the session cookie.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status

RESOURCE = "Anomalies"
DAG_ID = "tsad_nightly"


class LoginRequired(Exception):
    """Raised for a browser without a session; the app answers with a redirect to login."""

    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _user(request: Request) -> tuple[Any, bool]:
    """The user, and whether a bearer token (not the session cookie) identified them."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)  # None unless "Bearer <token>"
    try:
        user = await get_user(request, None, credentials)
        # get_user uses the token whenever it is a bearer one, and raises when it is not valid
        return user, credentials is not None and credentials.scheme.lower() == "bearer"
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN) \
                and request.method == "GET" and _wants_html(request):
            raise LoginRequired(get_auth_manager().get_url_login(next_url=str(request.url))) \
                from None
        raise


def _forbid(user: Any, what: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN,
                         f"user {user.get_name()!r} may not {what} (Airflow auth manager)")


async def viewer(request: Request) -> Any:
    """The signed-in user, allowed to read the Anomalies view."""
    return (await _reader(request))[0]


async def _reader(request: Request) -> tuple[Any, bool]:
    from airflow.api_fastapi.app import get_auth_manager

    user, by_bearer = await _user(request)
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE,
                                                        user=user):
        raise _forbid(user, "read the Anomalies view")
    return user, by_bearer


async def editor(request: Request) -> Any:
    """The signed-in user, allowed to record verdicts and snoozes (see the module docstring)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    user, by_bearer = await _reader(request)
    manager = get_auth_manager()
    if not (manager.is_authorized_custom_view(method="POST", resource_name=RESOURCE, user=user)
            and manager.is_authorized_dag(method="PUT", details=DagDetails(id=DAG_ID), user=user)):
        raise _forbid(user, f"record verdicts or snoozes (needs edit rights on DAG {DAG_ID})")
    if not by_bearer:  # the session cookie: a browser, which another site can make post
        _same_origin(request)
    return user


def _same_origin(request: Request) -> None:
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or urlsplit(source).netloc != host:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "cross-site request refused: the Origin does not match this server")
