"""`python -m docqa.emulator`: serve the emulator as its own process (what `make run` starts)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from docqa.emulator.app import create_app
from docqa.emulator.state import Knobs

# Without these, a person watching the app would see answers appear all at once; tests use
# `run_emulator`, whose defaults stream without delay. Env vars and flags override both.
INTERACTIVE_DEFAULTS = {"first_token_delay": 0.4, "chunk_delay": 0.04}


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m docqa.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", type=Path, default=Path("var/emulator"))
    parser.add_argument("--api-key", default=os.environ.get("EMULATOR_API_KEY", "emulator-key"))
    parser.add_argument("--first-token-delay", type=float, help="seconds before an answer's first chunk")
    parser.add_argument("--chunk-delay", type=float, help="seconds between answer chunks")
    parser.add_argument("--extract-delay", type=float, help="seconds before extraction starts")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    knobs = Knobs()
    knobs.update(INTERACTIVE_DEFAULTS)
    try:
        env_knobs = Knobs.from_env()
    except ValueError as exc:
        parser.error(str(exc))
    # Only values the environment actually sets replace the interactive defaults.
    knobs.update({k: v for k, v in env_knobs.as_json().items() if f"EMULATOR_{k.upper()}" in os.environ})
    flags = {
        "first_token_delay": args.first_token_delay,
        "chunk_delay": args.chunk_delay,
        "extract_delay": args.extract_delay,
    }
    knobs.update({k: v for k, v in flags.items() if v is not None})

    app = create_app(data_dir=args.data_dir, api_key=args.api_key, knobs=knobs)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        backlog=2048,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
