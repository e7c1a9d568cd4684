"""Loading models quietly: diffusers and transformers progress bars off (they break the CLI's
live view), and the dtype keyword the installed diffusers wants."""

from __future__ import annotations

from typing import Any


class quiet_loading:
    """Hide diffusers'/transformers' loading progress bars: they would break the CLI's live view."""

    def __enter__(self) -> None:
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog

        self._was = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
        dlog.disable_progress_bar()
        tlog.disable_progress_bar()

    def __exit__(self, *exc: Any) -> None:
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog

        if self._was[0]:
            dlog.enable_progress_bar()
        if self._was[1]:
            tlog.enable_progress_bar()


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """Newer diffusers renamed ``torch_dtype`` to ``dtype`` (and warn on the old name)."""
    from diffusers.pipelines import pipeline_utils

    return {"dtype": dtype} if hasattr(pipeline_utils, "_resolve_dtype") else {"torch_dtype": dtype}
