"""``tsad evaluate``: the command-line face of ``tsad.evaluation.evaluate``."""

from __future__ import annotations

import argparse

from tsad.config import TsadConfig


def run_evaluate(config: TsadConfig, args: argparse.Namespace) -> int:
    """Evaluate and print the pooled table and the per-file one (text or Markdown), or both in
    JSON; tsad's detector is the first row."""
    from tsad.evaluation import (evaluate, format_files_markdown, format_files_table,
                                 format_markdown, format_table, to_json)
    from tsad.evaluation.protocol import Protocol, parse_train_rows

    train_rows = parse_train_rows(str(args.train_rows))  # ValueError: one line, exit 2
    settings = config.group(args.group) if args.group else None
    rows = evaluate(args.directory, settings=settings, kinds=args.kind,
                    train_rows=train_rows, train_file=args.train_file)
    if args.train_file:
        protocol = f"trained on {args.train_file}, every row of every labelled file scored"
    else:
        protocol = Protocol(train_rows=train_rows).describe()
    if args.format == "json":
        print(to_json(rows, directory=str(args.directory), protocol=protocol))
    elif args.format == "markdown":
        print(format_markdown(rows), format_files_markdown(rows), sep="\n\n")
    else:
        print(format_table(rows, title=f"{args.directory}: {protocol}"),
              format_files_table(rows), sep="\n\n")
    return 0
