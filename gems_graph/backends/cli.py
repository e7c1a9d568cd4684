"""Typer command functions for the backends, mounted by ``gems_graph.app.cli``:

app.command("serve-generator")(serve_generator_command)
app.command("doctor")(doctor_command)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Optional

import typer

from gems_graph.terminal import fail

if TYPE_CHECKING:  # the CLI imports its backends only when a command runs
    from gems_graph.access_keys import AccessKeys


def serve_generator_command(
    spec: str = typer.Argument(..., help="Generator spec to serve, e.g. 'diffusers:Tongyi-MAI/Z-Image-Turbo'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 to serve other machines)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on (0 picks a free one)."),
    max_body_bytes: int = typer.Option(65536, "--max-body-bytes", help="Larger requests get 413."),
    max_edit_bytes: int = typer.Option(
        32 * 1024 * 1024, "--max-edit-bytes", help="Larger /v1/images/edits requests (image and mask uploads) get 413."
    ),
    max_concurrency: int = typer.Option(
        1, "--max-concurrency", help="Pipeline calls at once (each a batch); other images wait in the queue."
    ),
    max_queue: int = typer.Option(
        256, "--max-queue", help="Images that may wait; a request that would overfill the queue gets 503 with Retry-After."
    ),
    max_batch: int = typer.Option(
        8, "--max-batch", help="Most queued images (from any clients) in one pipeline call, where the model batches."
    ),
    batch_window: float = typer.Option(0.02, "--batch-window", help="Seconds the oldest queued image waits for others to batch with."),
    request_deadline: float = typer.Option(
        100.0, "--request-deadline", help="Seconds a request may wait for its images (queue and generation); then 504."
    ),
    max_steps: int = typer.Option(200, "--max-steps", help="Most inference steps a request may ask for (more: 400)."),
    max_pixels: int = typer.Option(2048 * 2048, "--max-pixels", help="Most pixels (width x height) a request may ask for (more: 400)."),
    max_n: int = typer.Option(10, "--max-n", help="Most images in one request (n, 1 to 10; more: 400)."),
    served_model_name: Optional[str] = typer.Option(
        None, "--served-model-name", help="Model id on /v1 (default: the spec's model, e.g. Tongyi-MAI/Z-Image-Turbo)."
    ),
    request_timeout: float = typer.Option(
        30.0, "--request-timeout", help="Seconds a request's line, headers and body may take to arrive; then the connection is closed."
    ),
    no_auth: bool = typer.Option(
        False,
        "--no-auth",
        help="Serve every client without a key, also on a non-loopback --host (when a proxy in front checks who gets in). "
        "Otherwise clients need a key from GEMS_SERVER_KEYS, and without keys only loopback clients are served.",
    ),
) -> None:
    """Serve a generator over HTTP: POST /v1/images/generations and /v1/images/edits (OpenAI Images API,
    as vLLM-Omni; edits when the generator edits), POST /generate (JSON, form or ?prompt=) -> PNG;
    GET /v1/models, GET /health, GET /metrics (Prometheus). Requests wait in one bounded queue and are
    batched across clients. Clients send one of the keys in GEMS_SERVER_KEYS ('owner:key' or 'key',
    comma-separated) as a bearer token (images-api: clients send GEMS_IMAGES_API_KEY)."""
    from gems_graph.backends.server import RequestLimits, make_server
    from gems_graph.models.registry import BackendLoadError, UnknownBackendError

    try:
        server = make_server(
            spec,
            host,
            port,
            max_body_bytes,
            max_concurrency,
            served_model_name,
            request_timeout,
            max_edit_bytes,
            max_queue=max_queue,
            max_batch=max_batch,
            batch_window=batch_window,
            request_deadline=request_deadline,
            limits=RequestLimits(max_steps=max_steps, max_pixels=max_pixels, max_n=max_n),
            open_access=no_auth,
        )
    except (UnknownBackendError, BackendLoadError, ValueError, OSError) as exc:
        fail(exc)
    typer.echo(
        f"serving {spec} at {server.url} and as images-api:{server.base_url}#{server.model_name} "
        f"(health: {server.root}/health, metrics: {server.root}/metrics; {_access_line(server.keys)})",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _access_line(keys: AccessKeys | None) -> str:
    """Who may call the server, as the start-up line says it (never a key)."""
    if keys is None:
        return "every client, no key (--no-auth)"
    return f"{len(keys.owners)} key(s) from GEMS_SERVER_KEYS" if keys else "loopback clients only (no GEMS_SERVER_KEYS)"


def doctor_command(
    config: Optional[str] = typer.Option(
        None, "--config", help="gems.toml to read (default: $GEMS_CONFIG, ./gems.toml, $GEMS_HOME/gems.toml)."
    ),
    generator: Optional[str] = typer.Option(None, "--generator", "-g", help="Generator spec to check."),
    chat_model: Optional[str] = typer.Option(None, "--chat-model", "-m", help="Chat-model spec to check."),
    critic_model: Optional[str] = typer.Option(None, "--critic-model", help="Critic chat-model spec to check."),
    probe: bool = typer.Option(True, "--probe/--no-probe", help="Make short calls to test structured output and logprobs."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Check the configured backends: imports, device, endpoints, structured output, logprobs."""
    from rich.console import Console
    from rich.table import Table

    from gems_graph.backends.doctor import FAIL, doctor
    from gems_graph.config import load_config
    from gems_graph.context import ConfigError

    try:
        loaded = load_config({"generator": generator, "chat_model": chat_model, "critic_model": critic_model}, config_path=config)
        rows = doctor(loaded.values, probe=probe)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows]))
    else:
        table = Table(title=f"gems doctor ({loaded.path or 'no config file'})")
        for col in ("role", "spec", "check", "status", "detail"):
            table.add_column(col, overflow="fold")
        colours = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for r in rows:
            table.add_row(r.role, r.spec, r.check, f"[{colours.get(r.status, 'white')}]{r.status}[/]", r.detail)
        Console().print(table)
    if any(r.status == FAIL for r in rows):
        raise typer.Exit(1)
