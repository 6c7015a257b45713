"""The ``minicnn`` command (also ``python -m minicnn``).

    minicnn models                         the model zoo: parameters and GMACs
    minicnn summary resnet50               layer-by-layer table of one model
    minicnn train classifier --epochs 5    run a training recipe (its own flags)
    minicnn gradcheck [OP]                 check every op's gradient numerically
    minicnn explain conv2d                 one op worked by hand, every matrix printed
    minicnn bench                          benchmark tables
    minicnn convert in.pth out.npz         a PyTorch checkpoint (or an ONNX model's weights) to minicnn's format
    minicnn info model.npz                 keys, shapes and dtypes in a checkpoint; an ONNX model's nodes
    minicnn export resnet18 r18.onnx       a zoo model as ONNX (optionally with trained --weights)

Each subcommand imports what it needs only when it runs, so ``minicnn --help``
is fast and works even when an optional part is missing. ``main(argv)``
returns the exit code: 0 on success, 2 on a usage error or a bad file.
"""
import argparse
import os
import importlib
import sys

TRAIN_RECIPES = {
    "classifier": ("minicnn.apps.train_classifier", "image classification (ResNet, VGG, ... on digits/MNIST/CIFAR-10/folders)"),
    "unet": ("minicnn.apps.train_unet", "U-Net segmentation"),
    "enet": ("minicnn.apps.train_enet", "ENet segmentation"),
}


class CommandError(Exception):
    """A user-facing error: printed as ``minicnn <cmd>: error: ...`` with exit code 2."""


def _import(module, what):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise CommandError(f"{what} needs {module}, which is not part of this installation") from None
        raise


def _forward(module, prog, argv):
    """Run ``module.main(argv)`` as if it were the program ``prog`` (its --help says so)."""
    mod = _import(module, prog)
    saved = sys.argv[0]
    sys.argv[0] = prog  # argparse takes the program name shown in usage lines from here
    try:
        mod.main(list(argv))  # recipes return their result (a dict), not an exit code
    except SystemExit as e:
        if isinstance(e.code, str):  # raise SystemExit("error: ...") is a user error with a message
            raise CommandError(e.code.removeprefix("error: ")) from None
        return 0 if e.code is None else e.code
    finally:
        sys.argv[0] = saved
    return 0


# -- models and summary ----------------------------------------------------------------------


def cmd_models(args):
    models = _import("minicnn.models", "minicnn models")
    summary = _import("minicnn.summary", "minicnn models")
    names = args.names or models.list_models()
    for name in names:
        if name not in models.list_models():
            models.get_model(name)  # raises ValueError naming close matches
    # One forward pass per model at its reference size: rows are printed as they come.
    header = ("model", "input", "parameters", "GMACs", "figures quoted by")
    widths = (max(map(len, [*names, "model"])), 11, 13, 8, 0)

    def row(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, "<<>><", widths)).rstrip()

    print(row(header))
    print(row(["-" * max(w, len(h)) for w, h in zip(widths, header)]))
    for name in names:
        kwargs, input_size = _reference(models, name)
        s = summary.summary(models.get_model(name, **kwargs), input_size=input_size)
        ref = getattr(models, "REFERENCE", {}).get(name)
        print(row((name, "x".join(map(str, input_size)), f"{s.total_params:,}", f"{s.gmacs:.3f}",
                   ref[4] if ref else "")), flush=True)
    return 0


def _reference(models, name):
    """Keyword arguments and input size (C, H, W) the zoo's published figures are quoted at."""
    ref = getattr(models, "REFERENCE", {}).get(name)
    return (dict(ref[0]), tuple(ref[1])) if ref else ({}, (3, 224, 224))


def _build(args, what):
    """The zoo model ``args.name`` (with --num-classes) and its input size (--input-size, or the
    size its published figures are quoted at)."""
    models = _import("minicnn.models", what)
    kwargs, input_size = _reference(models, args.name)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.input_size is not None:
        input_size = tuple(args.input_size)
    return models.get_model(args.name, **kwargs), input_size


def cmd_summary(args):
    summary = _import("minicnn.summary", "minicnn summary")
    model, input_size = _build(args, "minicnn summary")
    s = summary.summary(model, input_size=input_size, batch_size=args.batch, optimizer=args.optimizer)
    print(s)
    if args.memory_gb is not None:
        print(f"Largest training batch within {args.memory_gb:g} GiB (estimate, {args.optimizer}): "
              f"{s.max_batch_size(args.memory_gb):,}")
    return 0


# -- recipes ------------------------------------------------------------------------------------


def cmd_train(args):
    module, _ = TRAIN_RECIPES[args.recipe]
    return _forward(module, f"minicnn train {args.recipe}", args.args)


def cmd_gradcheck(args):
    return _forward("minicnn.apps.gradcheck_tour", "minicnn gradcheck", args.args)


def cmd_bench(args):
    return _forward("minicnn.apps.bench", "minicnn bench", args.args)


FORWARDED = (cmd_gradcheck, cmd_bench)  # every argument after the command goes on unparsed


def cmd_explain(args):
    from ..viz import explain

    print(explain(args.op, seed=args.seed))
    return 0


# -- checkpoints --------------------------------------------------------------------------------


def _walk(obj, path=(), seen=None):
    """(path, leaf) pairs of a loaded checkpoint, depth first, in order. A container met again
    (a pickle may share one list in many places, or nest it in itself) is listed once, as a
    reference, so that the walk stays linear in the file's size."""
    seen = set() if seen is None else seen
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in seen:
            yield path, "<shared, listed above>"
            return
        seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, path + (k,), seen)
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) or hasattr(v, "shape")
                                               for v in obj):
        for i, v in enumerate(obj):
            yield from _walk(v, path + (i,), seen)
    else:
        yield path, obj


def _pick(obj, key, filename):
    """``obj[a][b]`` for ``key`` "a/b" (int-like parts also match int keys)."""
    for part in key.split("/"):
        options = [part] + ([int(part)] if part.lstrip("-").isdigit() else [])
        found = [o for o in options if isinstance(obj, dict) and o in obj]
        if not found:
            have = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise CommandError(f"{filename} has no key {key!r} (at {part!r}; keys there: {have})")
        obj = obj[found[0]]
    return obj


# convert writes at most this many times its input's size (plus the slack): a legitimate checkpoint
# grows only by format overhead, while a crafted one can expand a few bytes into terabytes
CONVERT_GROWTH, CONVERT_SLACK = 16, 64 * 2**20


def _onnx(what):
    _import("onnx", f"{what} of an ONNX model (pip install minicnn[onnx])")
    return _import("minicnn.onnx", what)


def _is_onnx(path):
    return str(path).lower().endswith(".onnx")


def cmd_export(args):
    onnx = _onnx("minicnn export")
    from ..creation import randn
    from ..serialization import load

    model, input_size = _build(args, "minicnn export")
    if args.weights is not None:
        model.load_state_dict(load(args.weights))
    proto = onnx.export(model.eval(), randn(1, *input_size), args.output, opset_version=args.opset,
                        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    print(f"wrote {args.output}: {args.name}, input (batch, {', '.join(map(str, input_size))}), "
          f"{len(proto.graph.node)} nodes, opset {args.opset}")
    return 0


def cmd_convert(args):
    from ..serialization import load, save

    if _is_onnx(args.output):
        raise CommandError(f"{args.output}: 'convert' writes weights; a model becomes ONNX with 'minicnn export'")
    if _is_onnx(args.input):
        obj = {k: v for k, v in _onnx("minicnn convert").load(args.input).state_dict().items()}
    else:
        obj = load(args.input, format=args.input_format)
    if args.key is not None:
        obj = _pick(obj, args.key, args.input)
    if args.strip_prefix:
        if not isinstance(obj, dict):
            raise CommandError("--strip-prefix needs a dict of arrays (use --key to pick one)")
        p = args.strip_prefix
        obj = {(k[len(p):] if isinstance(k, str) and k.startswith(p) else k): v for k, v in obj.items()}
    try:
        writes = sum(int(v.nbytes) for _, v in _walk(obj) if hasattr(v, "nbytes"))
    except RecursionError:
        raise CommandError(f"{args.input}: its structure is nested too deeply to convert") from None
    limit = CONVERT_GROWTH * os.path.getsize(args.input) + CONVERT_SLACK
    if writes > limit:  # expanded (stride-0) tensors would be written out in full
        raise CommandError(f"{args.input} would become {writes:,} bytes of arrays, more than {CONVERT_GROWTH}x the "
                           f"file ({os.path.getsize(args.input):,} bytes): it holds expanded tensors; refusing to "
                           f"write them out")
    if any(isinstance(v, str) and v == "<shared, listed above>" for _, v in _walk(obj)):
        raise CommandError(f"{args.input}: containers that contain themselves or appear in several places cannot "
                           "be converted (minicnn's format holds trees)")
    save(obj, args.output, format=args.format)
    arrays = [(p, v) for p, v in _walk(obj) if hasattr(v, "shape")]
    total = sum(int(v.size) for _, v in arrays)
    print(f"wrote {args.output}: {len(arrays)} arrays, {total:,} elements (from {args.input})")
    return 0


def cmd_info(args):
    import numpy as np

    from ..serialization import detect_format, load

    if _is_onnx(args.file) and args.format is None:
        return _onnx_info(args.file)
    fmt = args.format or detect_format(args.file)
    obj = load(args.file, format=fmt)
    rows, scalars, total, nbytes = [], [], 0, 0
    try:
        leaves = list(_walk(obj))
    except RecursionError:
        raise CommandError(f"{args.file}: its structure is nested too deeply to list") from None
    for path, v in leaves:
        name = "/".join(map(str, path)) or "(root)"
        if isinstance(v, np.ndarray):
            rows.append((name, str(v.dtype), str(v.shape), f"{v.size:,}"))
            total += v.size
            nbytes += v.nbytes
        else:
            scalars.append(f"{name} = {v!r:.100}")
    print(f"{args.file}: {_FORMAT_NAMES[fmt]}, {len(rows)} arrays, {total:,} elements, {nbytes / 1e6:.1f} MB")
    if rows:
        _table(("key", "dtype", "shape", "elements"), rows, align="<<<>")
    for line in scalars:
        print(line)
    return 0


def _onnx_info(path):
    module = _onnx("minicnn info").load(path)
    params = sum(p.numel() for p in module.parameters())
    print(f"{path}: ONNX opset {module.opset}, {len(module.nodes)} nodes, {len(module.state_dict())} initializers "
          f"as weights and statistics ({params:,} parameters); inputs {', '.join(module.input_names)}; "
          f"outputs {', '.join(module.output_names)}")
    rows = [(str(k), op, name, _short(", ".join(i for i in ins if i)), _short(", ".join(outs)))
            for k, (op, name, ins, outs) in enumerate(module.nodes)]
    _table(("#", "op type", "name", "inputs", "outputs"), rows, align="><<<<")
    return 0


def _short(text, width=60):
    return text if len(text) <= width else text[:width - 3] + "..."


_FORMAT_NAMES = {"npz": "minicnn/NumPy .npz", "torch": "PyTorch torch.save file", "safetensors": "safetensors"}


def _table(header, rows, align):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{a}{w}}}" for a, w in zip(align, widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))


# -- the parser ---------------------------------------------------------------------------------


def build_parser():
    from .common import OneLineParser, number

    parser = OneLineParser(
        prog="minicnn", description="minicnn: a from-scratch CNN engine on NumPy/numba and CuPy.",
        epilog="Run 'minicnn <command> --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"minicnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    p = sub.add_parser("models", help="list the model zoo with parameters and GMACs",
                       description="List the models in minicnn.models with their parameter counts and "
                                   "multiply-accumulates (GMACs), measured by one forward pass at the input "
                                   "size their published figures are quoted at (all 19 models: a minute or two on 2 cores).")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="layer-by-layer summary of one model",
                       description="Print a model's layers, output shapes, parameters and MACs.")
    p.add_argument("name", help="model name (see 'minicnn models')")
    p.add_argument("--input-size", type=number(int, 1), nargs=3, metavar=("C", "H", "W"),
                   help="input size without the batch (default: the model's reference size, e.g. 3 224 224)")
    p.add_argument("--batch", type=number(int, 1), default=1, help="batch size for activation memory (default 1)")
    p.add_argument("--memory-gb", type=number(float, above=0), default=None, metavar="G",
                   help="also report the largest training batch that fits in G GiB")
    p.add_argument("--num-classes", type=number(int, 1), default=None, help="number of output classes")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "adamw"), default="adam",
                   help="optimizer state counted in the memory estimate (default adam)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("train", help="run a training recipe",
                       description="Run a training recipe; everything after the recipe name goes to it "
                                   "(e.g. 'minicnn train classifier --help' lists its flags).")
    p.add_argument("recipe", choices=sorted(TRAIN_RECIPES),
                   help="; ".join(f"{k}: {v[1]}" for k, v in sorted(TRAIN_RECIPES.items())))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the recipe's own arguments")
    p.set_defaults(func=cmd_train)

    for name, func, help_, desc in (
        ("gradcheck", cmd_gradcheck, "check gradients of every op (or one OP) numerically",
         "The gradient-check tour: every op's analytic gradient against finite differences, as a "
         "table. Arguments (e.g. an op name, --help) go to minicnn.apps.gradcheck_tour."),
        ("bench", cmd_bench, "run the benchmarks",
         "Benchmark tables (minicnn.apps.bench); arguments (e.g. --help) go to it."),
    ):
        p = sub.add_parser(name, help=help_, description=desc, add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER, help="passed on")
        p.set_defaults(func=func)

    from ..viz import OPS
    p = sub.add_parser("explain", help="one op worked by hand on a tiny input, every matrix printed",
                       description="A worked example of OP on a tiny input: the input, every intermediate "
                                   "matrix of forward and backward (for conv2d: im2col, the GEMM, col2im), "
                                   "each checked against the definition.")
    p.add_argument("op", choices=OPS, metavar="OP", help=f"one of {', '.join(OPS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the example's numbers (default 0)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("convert", help="convert a checkpoint (e.g. PyTorch .pth) to minicnn's .npz",
                       description="Load IN (PyTorch .pt/.pth, safetensors or .npz; no PyTorch needed) and "
                                   "write OUT in minicnn's .npz format (or safetensors for a .safetensors OUT).")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--key", help="save only this entry, e.g. 'state_dict' or 'model' (nested: 'a/b')")
    p.add_argument("--strip-prefix", metavar="PREFIX", help="remove PREFIX from keys, e.g. 'module.'")
    p.add_argument("--format", choices=("npz", "safetensors"), help="output format (default: by OUT's extension)")
    p.add_argument("--input-format", choices=("npz", "torch", "safetensors"),
                   help="input format (default: from the file's first bytes)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="write a zoo model as ONNX",
                       description="Build model NAME (with --weights, a trained state dict) and write it as an "
                                   "ONNX file (minicnn.onnx.export; the batch axis stays free). Needs the onnx "
                                   "package (pip install minicnn[onnx]).")
    p.add_argument("name", help="model name (see 'minicnn models')")
    p.add_argument("output", metavar="OUT", help="the .onnx file to write")
    p.add_argument("--input-size", type=number(int, 1), nargs=3, metavar=("C", "H", "W"),
                   help="input size without the batch (default: the model's reference size, e.g. 3 224 224)")
    p.add_argument("--weights", metavar="FILE", help="a state dict to load first (.npz, .pt/.pth, .safetensors)")
    p.add_argument("--num-classes", type=number(int, 1), default=None, help="number of output classes")
    p.add_argument("--opset", type=number(int, 13), default=17, help="ONNX opset version, 13..21 (default 17)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="keys, shapes and dtypes in a checkpoint; an ONNX model's nodes",
                       description="List the arrays (key, dtype, shape) and scalar entries of a checkpoint "
                                   "file: minicnn .npz, PyTorch .pt/.pth or safetensors.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("npz", "torch", "safetensors"), help="(default: from the file's first bytes)")
    p.set_defaults(func=cmd_info)
    parser.commands = sub.choices  # name -> subparser, for help when a forwarded command is missing
    return parser


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minicnn")
    except PackageNotFoundError:
        return "unknown"


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if args.func in FORWARDED:
            args.args = argv[1:]  # the command is argv[0]: the only global options exit early
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help, --version (0) or a usage error (2, message already printed)
        return e.code
    label = " ".join([args.command] + ([args.recipe] if args.command == "train" else []))
    try:
        code = args.func(args)
        sys.stdout.flush()  # where a closed pipe shows up for an output shorter than the buffer
        return code
    except BrokenPipeError:  # the reader went away (``minicnn models | head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except CommandError as e:
        if args.func in FORWARDED and {"-h", "--help"} & set(args.args):
            parser.commands[args.command].print_help()  # the help asked for, then why no more
            _fail(label, e)
            return 0
        return _fail(label, e)
    except NotImplementedError as e:  # an ONNX file with an op minicnn lacks, a model that can't export
        if args.func in (cmd_convert, cmd_info, cmd_export):
            return _fail(label, e)
        raise
    except (OSError, ValueError, TypeError) as e:
        user_error = (OSError, ValueError, TypeError) if args.func in (cmd_convert, cmd_info, cmd_export) else ValueError
        if args.func in (cmd_convert, cmd_info, cmd_summary, cmd_models, cmd_export) and isinstance(e, user_error):
            return _fail(label, e)  # bad files, unknown model names, unsaveable entries
        raise


def _fail(command, err):
    print(f"minicnn {command}: error: {err}", file=sys.stderr)
    return 2
