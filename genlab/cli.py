"""`genlab data|train|eval|generate|eval-nets ...`: one entry point; errors are one line, exit 2."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from genlab.errors import GenlabError


def _cmd_data(args: argparse.Namespace) -> None:
    from genlab.data import IMAGE_DATASETS, load_image_dataset

    print(f"{'name':<15} {'train':>7} {'test':>7} {'classes':>7}  source")
    for name in IMAGE_DATASETS:
        try:
            data = load_image_dataset(name)
            print(f"{name:<15} {len(data.train_labels):>7} {len(data.test_labels):>7} "
                  f"{data.num_classes:>7}  {data.source}")
        except GenlabError as exc:
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  unavailable: {exc}")
    _list_text_corpora()


def _list_text_corpora() -> None:
    from genlab.data.text import TEXT_CORPORA, corpus_sizes, is_parsed

    print(f"\n{'text corpus':<15} {'train':>7} {'valid':>7} {'test':>7}  source (records per split)")
    for name, corpus in TEXT_CORPORA.items():
        if not is_parsed(name):  # listing must stay fast: never parse a whole Bible here
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  {corpus.source}: not parsed yet "
                  "(first use takes ~2 min)")
            continue
        try:
            sizes = corpus_sizes(name)
            print(f"{name:<15} {sizes['train']:>7} {sizes['validation']:>7} {sizes['test']:>7}  {corpus.source}")
        except GenlabError as exc:
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  unavailable: {exc}")


def _cmd_train(args: argparse.Namespace) -> None:
    from genlab.config import apply_override, load_recipe, recipe_from_tree
    from genlab.pipeline import train
    from genlab.tracking import RunDir

    if args.resume:
        run_path = Path(args.resume)
        tree = RunDir(run_path).read_config()
        overrides = ([args.recipe] if args.recipe else []) + args.overrides
        for assignment in overrides:
            apply_override(tree, assignment)
        recipe = recipe_from_tree(tree)
    else:
        if not args.recipe:
            raise GenlabError("name a recipe (a YAML file or one of recipes/), or pass --resume RUN")
        recipe = load_recipe(args.recipe, args.overrides)
        run_path = Path(args.out or Path("runs") / recipe.name)
    report = train(recipe, run_path, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) == 0:
        cost = report["cost"]
        print(f"trained {cost['steps']} steps ({cost['epochs']} epochs) in {cost['train_seconds']:.0f} s; "
              f"run: {run_path}")


def _cmd_eval(args: argparse.Namespace) -> None:
    from genlab.pipeline import evaluate

    metrics = evaluate(Path(args.run), args.n, args.checkpoint)
    if "class_histogram" not in metrics:  # a text model: loss and perplexity, or its task metric
        print(json.dumps(metrics, indent=2, ensure_ascii=False))
        print(f"written to {Path(args.run) / 'report.json'}")
        return
    shown = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    print(json.dumps(shown, indent=2))
    print("class histogram: " + ", ".join(f"{k}: {v:.3f}" for k, v in metrics["class_histogram"].items()))
    print(f"written to {Path(args.run) / 'report.json'}")


def _generate_text(args: argparse.Namespace) -> None:
    from genlab.text_runs import load_lm, stream_text

    if args.prompt is None:
        raise GenlabError("a language-model run needs --prompt TEXT")
    model, tokenizer, _ = load_lm(Path(args.run), args.checkpoint)
    pieces = stream_text(model, tokenizer, args.prompt, args.max_tokens, args.temperature, args.top_k,
                         args.top_p, args.stop, args.seed)
    first = next(pieces, "")  # bad input fails here, before anything is printed
    print(args.prompt + first, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()


def _cmd_generate(args: argparse.Namespace) -> None:
    from genlab.images import save_images
    from genlab.models.gan import sample_images
    from genlab.pipeline import load_generator
    from genlab.tracking import RunDir

    task = RunDir(Path(args.run)).task
    if task == "lm":
        return _generate_text(args)
    if task == "finetune":
        from genlab.finetune_runs import answer

        if args.prompt is None:
            raise GenlabError("a fine-tuned run needs --prompt TEXT (the source, or the text to classify)")
        print(answer(Path(args.run), args.prompt, args.max_tokens))
        return
    if args.out is None:
        raise GenlabError("an image run needs --out FILE.png or FILE.npy")
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise GenlabError(f"--out {out} must end in .png or .npy")
    if not out.parent.is_dir():
        raise GenlabError(f"--out {out}: folder {out.parent} does not exist")
    generator, _, config = load_generator(Path(args.run), args.checkpoint)
    images, _ = sample_images(generator, args.n, args.seed, args.label)
    save_images(images, out, nrow=config.num_classes or None)
    print(f"wrote {args.n} samples to {out}")


def _cmd_eval_nets(args: argparse.Namespace) -> None:
    from genlab.evaluation.classifier import evaluator_info, train_evaluator

    if args.action == "train":
        out = Path(args.out) if args.out else Path(__file__).parent / "evaluation" / "weights"
        kwargs = {"epochs": args.epochs} if args.epochs else {}
        info = train_evaluator(args.data, out, seed=args.seed, **kwargs)
        print(json.dumps(info, indent=2))
    else:
        from genlab.data import IMAGE_DATASETS

        for name in IMAGE_DATASETS:
            try:
                info = evaluator_info(name)
                print(f"{name:<15} test accuracy {info['test_accuracy']:.4f}  sha256 {info['sha256'][:16]}…")
            except GenlabError as exc:
                print(f"{name:<15} {exc}")


def _cmd_report(args: argparse.Namespace) -> None:
    import shlex

    from genlab.report import collect, plot, render_table

    rows = collect(args.runs)  # before touching --out, so a bad run leaves nothing half-written
    table = render_table(rows)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    markdown, figure = out / "report.md", out / "quality_vs_cost.png"
    command = shlex.join(["genlab", "report", *args.runs, "--out", args.out])
    markdown.write_text(f"{table}\nMade by `{command}`.\n")
    plot(rows, figure)
    print(table)
    print(f"wrote {markdown}")
    print(f"wrote {figure}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab", description="Pretrain, fine-tune, evaluate and "
                                     "generate with small generative models.")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="list the data sets and where they were found")
    data.add_argument("action", choices=["list"])
    data.set_defaults(func=_cmd_data)

    train = commands.add_parser("train", help="train a recipe into a run directory")
    train.add_argument("recipe", nargs="?", help="recipe YAML file or name in recipes/")
    train.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    train.add_argument("--out", help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("eval", help="score a run's samples (language models: test loss and "
                                   "perplexity); writes report.json")
    evaluate.add_argument("run")
    evaluate.add_argument("--n", type=int, help="number of generated samples (default: recipe eval.num_samples)")
    evaluate.add_argument("--checkpoint", choices=["last", "best"], default="last",
                          help="best = the epoch with the lowest quick FID during training")
    evaluate.set_defaults(func=_cmd_eval)

    generate = commands.add_parser("generate", help="image runs: write samples as PNG grid or .npy; "
                                     "language-model runs: stream a continuation of --prompt")
    generate.add_argument("run")
    generate.add_argument("--n", type=int, default=64)
    generate.add_argument("--out", help="FILE.png (grid) or FILE.npy (N x 28 x 28 in [0, 1])")
    generate.add_argument("--label", type=int, help="class to generate (conditional models)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--prompt", help="text to continue (language-model runs)")
    generate.add_argument("--max-tokens", type=int, default=256, help="new tokens at most")
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    generate.add_argument("--top-k", type=int, help="sample among the k likeliest tokens")
    generate.add_argument("--top-p", type=float, help="sample among the likeliest tokens covering p")
    generate.add_argument("--stop", help="end the text before this string")
    generate.add_argument("--checkpoint", choices=["last", "best"], default="last")
    generate.set_defaults(func=_cmd_generate)

    nets = commands.add_parser("eval-nets", help="the fixed classifier networks behind FID/precision/recall")
    nets.add_argument("action", choices=["list", "train"])
    nets.add_argument("--data", default="mnist")
    nets.add_argument("--epochs", type=int)
    nets.add_argument("--seed", type=int, default=0)
    nets.add_argument("--out", help="folder for the weights (default: the package's shipped folder)")
    nets.set_defaults(func=_cmd_eval_nets)

    report = commands.add_parser("report", help="compare fine-tuning runs: a Markdown table and a "
                                 "quality-vs-cost plot from their report.json")
    report.add_argument("runs", nargs="+", metavar="RUN", help="fine-tuning run folders (evaluated)")
    report.add_argument("--out", default="reports", help="folder for report.md and quality_vs_cost.png "
                        "(default reports/)")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GenlabError as exc:
        print(f"genlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
