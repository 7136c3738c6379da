"""`audiothinker judge check`: is the judge server up, how fast, what does it say? (glue for the main CLI)."""

from __future__ import annotations

import argparse
import sys

from audiothinker.config import JudgeConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `judge check --base-url URL --model NAME [--api-key-env VAR]` on the main CLI's subparsers."""
    defaults = JudgeConfig()
    judge = subparsers.add_parser("judge", help="judge server utilities")
    sub = judge.add_subparsers(dest="judge_command", required=True)
    check = sub.add_parser("check", help="score a sample request; report reachability, latency and the verdict")
    check.add_argument("--base-url", required=True, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    check.add_argument("--model", default=defaults.model, help=f"model name on the server (default {defaults.model})")
    check.add_argument("--api-key-env", default=defaults.api_key_env, help=f"env var holding the API key (default {defaults.api_key_env})")
    check.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    check.add_argument("--logprobs", type=int, default=defaults.logprobs, help="top log-probs to ask for; 0 = text only")
    judge.set_defaults(func=run)
    return judge


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 the judge answered, 1 it did not (the reason on stderr)."""
    from audiothinker.judge.factory import build_judge
    from audiothinker.judge.scoring import JudgeUnavailableError

    if args.judge_command != "check":
        print(f"unknown judge command {args.judge_command!r}; valid: ['check']", file=sys.stderr)
        return 2
    cfg = JudgeConfig(backend="openai", base_url=args.base_url, model=args.model, api_key_env=args.api_key_env,
                      timeout=args.timeout, max_retries=1, logprobs=args.logprobs, cache=False)
    judge = build_judge(cfg)
    try:
        print(judge.check())
    except JudgeUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        judge.close()
    return 0
