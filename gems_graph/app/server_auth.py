"""Who may use the graph on a LangGraph server, and whose runs they see.

``langgraph.json`` names ``auth`` here, so ``langgraph dev`` and ``langhost serve`` (the
stock Agent Server) both call it on every request (LangGraph's custom auth). The keys
come from ``GEMS_SERVER_KEYS`` (``gems_graph.access_keys``: ``owner:key`` entries, the
same kind of key ``gems serve-generator`` takes); a client sends one as ``X-Api-Key``
(``get_client(url=..., api_key=KEY)``) or ``Authorization: Bearer KEY``. A missing or
wrong key is 401. With no keys set only loopback clients get in (as ``local``), so a
server bound to another address is closed until keys are set.

Threads, runs, crons and assistants a client makes carry ``metadata.owner``, and every
read, search, update and delete is filtered to the caller's own: another key's runs are
not found. The assistants the server makes from ``langgraph.json`` (no owner) are readable
by everyone. Store items live under a namespace that starts with the owner.

``disable_studio_auth`` is set in ``langgraph.json`` because the server otherwise lets in,
without a key, any request that says ``X-Auth-Scheme: langsmith``.
"""

from __future__ import annotations

import functools
from typing import cast

from langgraph_sdk import Auth
from langgraph_sdk.auth.types import AssistantsRead, AssistantsSearch, RunsCreate

from gems_graph.access_keys import AccessKeys, admit

auth = Auth()


@functools.cache
def _keys() -> AccessKeys:
    """Read once per worker process; ``python -m gems_graph.app.agent_server serve`` checks them before any worker starts."""
    return AccessKeys.from_env()


@auth.authenticate
async def authenticate(headers: dict, scope: dict) -> Auth.types.MinimalUserDict:
    text = {
        k.decode("latin-1") if isinstance(k, bytes) else k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in headers.items()
    }
    peer = (scope.get("client") or (None,))[0]
    try:
        owner = admit(_keys(), text, peer)
    except PermissionError as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return {"identity": owner}


@auth.on.assistants.read
async def _any_assistant_is_readable(ctx: Auth.types.AuthContext, value: AssistantsRead) -> None:
    """The graph's own assistant has no owner; reading one reveals no one's runs."""


@auth.on.assistants.search
async def _any_assistant_is_found(ctx: Auth.types.AuthContext, value: AssistantsSearch) -> None:
    """As reading: searching assistants finds the graph's own."""


@auth.on.store()
async def _own_store_namespace(ctx: Auth.types.AuthContext, value: dict) -> None:
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        raise Auth.exceptions.HTTPException(status_code=403, detail="store namespaces start with your owner name")


@auth.on
async def _owned_by_the_caller(ctx: Auth.types.AuthContext, value: dict) -> dict:
    """What is made carries its owner; what is read, searched, changed or deleted must be the caller's."""
    owner = {"owner": ctx.user.identity}
    if isinstance(value, dict):
        if isinstance(value.get("metadata"), dict):
            value["metadata"].update(owner)  # in place: the server keeps its own reference to this dict
        else:
            value["metadata"] = dict(owner)
    return owner


@auth.on.threads.create_run
async def _run_on_the_callers_thread(ctx: Auth.types.AuthContext, value: RunsCreate) -> dict:
    """As every action (the run carries its owner, its thread must be the caller's), and the
    run's copy of the user stored as JSON: langgraph-runtime-pg 0.11.1 writes the run's
    kwargs with ``json.dumps``, which fails on the server's user object (HTTP 500); the
    worker turns ``{"identity": ...}`` back into a user when it takes the run."""
    configurable = ((value.get("kwargs") or {}).get("config") or {}).get("configurable")
    if isinstance(configurable, dict) and configurable.get("langgraph_auth_user") is not None:
        configurable["langgraph_auth_user"] = {"identity": ctx.user.identity}
    return await _owned_by_the_caller(ctx, cast(dict, value))  # a TypedDict is the plain dict the generic handler takes
