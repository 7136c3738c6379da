"""`audiothinker` command line: train, sft, eval, score, judge check, demo, data synth, config."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Subcommands implemented in their own modules: each exposes add_parser(subparsers) and run(args).
_MODULES = {
    "score": "audiothinker.eval.score",
    "eval": "audiothinker.eval.cli",
    "judge": "audiothinker.judge.cli",
    "sft": "audiothinker.sft",
    "demo": "audiothinker.demo",
    "data": "audiothinker.data.cli",
}


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="GRPO training (Audio-Thinker rewards)")
    p.add_argument("--config", help="YAML config file (see recipes/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.beta=0.02 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    p.add_argument("--dry-run", action="store_true",
                   help="check the recipe without training: config, meta-device model, a few records, memory estimate")
    p.add_argument("--accelerate-config", help="with --dry-run: accelerate config to size for "
                   "(default: the --config_file named in the recipe's launch comment)")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from audiothinker.config import check_paths, load_config
    from audiothinker.trainer.grpo import train

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from audiothinker.dryrun import dry_run

        print(dry_run(cfg, args.accelerate_config, recipe=args.config))
        return 0
    check_paths(cfg)
    final = train(cfg, resume=args.resume)
    print(f"final model: {final}")
    return 0


def _add_config(sub) -> None:
    p = sub.add_parser("config", help="print the resolved config or the reference of every key")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--reference", action="store_true", help="print a Markdown table of every key")
    p.set_defaults(func=_run_config)


def _run_config(args) -> int:
    import yaml

    from audiothinker.config import load_config, reference, to_dict

    if args.reference:
        print("| key | default | meaning |\n|---|---|---|")
        for key, default, doc in reference():
            print(f"| `{key}` | `{default}` | {doc} |")
        return 0
    print(yaml.safe_dump(to_dict(load_config(args.config, args.overrides)), sort_keys=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiothinker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_config(sub)
    for name, module in _MODULES.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


def _one_line(e: BaseException) -> str:
    """An exception as one line: user errors as their message, anything else with its type and a hint."""
    from audiothinker.config import ConfigError
    from audiothinker.data.records import DataError
    from audiothinker.judge.scoring import JudgeUnavailableError
    from audiothinker.trainer.checkpoint import CheckpointError

    text = " ".join(str(e).split())  # multi-line messages (YAML, transformers) folded into one line
    if isinstance(e, (ConfigError, DataError, JudgeUnavailableError, CheckpointError)):
        return text
    if isinstance(e, OSError) and e.filename is not None:  # e.g. a --json path under a regular file
        return f"{e.strerror or type(e).__name__}: {e.filename}"
    return (f"{type(e).__name__}: {text}" if text else type(e).__name__) + " (rerun with --debug for the traceback)"


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; every error is one line on stderr (`error: ...`, exit 2), its traceback only with --debug."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # global flag, accepted anywhere on the line
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    func = getattr(args, "func", None) or sys.modules[_MODULES[args.command]].run
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns any error into one line
        if debug:
            import traceback

            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
