"""The ``anynet`` command: train, evaluate, predict, serve, info.

    anynet train                                   # MNIST, the default MLP, saved and recorded
    anynet train --dataset emnist-standin --model mlp-large --augment standard --plots plots/
    anynet evaluate --model FILE --dataset mnist
    anynet predict seven.png two.jpg               # uses the last trained model
    anynet predict --dataset mnist --limit 10 --model FILE
    anynet serve                                   # the drawing page, with the last trained model
    anynet info

``anynet train`` saves to ``--out`` (default ``$ANYNET_HOME/models/<dataset>-<model>-<time>.safetensors``,
``ANYNET_HOME`` defaulting to ``~/.anynet``) and records that path in ``$ANYNET_HOME/last_model``;
``evaluate``, ``predict`` and ``serve`` use the recorded model when ``--model`` is not given.

Errors are reported as one ``anynet: error: ...`` message on stderr with exit status 1 (2 for
bad command-line usage); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  anynet train                                  train the default MLP on MNIST (about 98.5%)
  anynet train --dataset emnist-standin --epochs 15 --plots plots/
  anynet evaluate --dataset mnist               evaluate the last trained model
  anynet predict my_digit.png --show seen/      top-3 guesses for your own image
  anynet serve                                  draw characters in the browser
  anynet info                                   versions, backends, data found locally

environment:
  ANYNET_DATA_DIR   a folder with dataset files (searched before the download cache)
  ANYNET_CACHE_DIR  where downloads go (default: the user cache, e.g. ~/.cache/anynet)
  ANYNET_HOME       where models and the last-model record go (default ~/.anynet)
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and appends real defaults (not None / False) to help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default not in (None, False, argparse.SUPPRESS)
            and action.option_strings
            and "%(default)" not in text
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


# --------------------------------------------------------------------------- helpers


def _say(*parts, file=None):
    print(*parts, file=file or sys.stdout, flush=True)


def _model_path(given, command: str) -> Path:
    """The model file named on the command line (a file, not a folder or the temporary of an
    interrupted save), or the last one ``anynet train`` saved."""
    if given is not None:
        from .io import model_file

        return model_file(given)
    from .app.paths import default_model_path

    return default_model_path(command)


def _out_path(args, dataset: str) -> Path:
    """``--out``, or the default file under ``$ANYNET_HOME/models/``."""
    return Path(args.out).expanduser() if args.out else _default_out(dataset, args.model)


def _default_out(dataset: str, model: str) -> Path:
    from .app.paths import anynet_home

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return anynet_home() / "models" / f"{dataset}-{model}-{stamp}.safetensors"


def _check_out(args) -> None:
    """Fail before loading data or training when the model could not be saved: ``--out`` is a
    folder, in a missing, non-folder or read-only folder (the default folder is created), not a
    regular file (FIFO, device, socket, symbolic link), or an existing file that is not an
    anynet model (unless ``--force``)."""
    if args.no_save:
        return
    if args.out is None:
        folder, created = _default_out_folder()
    else:
        folder, created = _given_out_folder(Path(args.out).expanduser(), args.force), []
    try:  # what save_model does: a temporary file in the same folder
        fd, probe = tempfile.mkstemp(prefix=".anynet-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(
            f"cannot write a model into {folder} ({exc.strerror or exc}); choose another --out"
        ) from None
    finally:  # save_model creates the folder again; a failed run leaves nothing behind
        for path in created:
            path.rmdir()


def _default_out_folder() -> tuple[Path, list[Path]]:
    """``$ANYNET_HOME/models``, created, and the folders that were created for it."""
    from .app.paths import anynet_home

    folder = anynet_home() / "models"
    created = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the model folder {folder} ({exc.strerror or exc}); "
            "set ANYNET_HOME or pass --out FILE"
        ) from None
    return folder, created


def _given_out_folder(out: Path, force: bool) -> Path:
    """The folder of ``--out``, after checking what is at ``--out`` may be replaced."""
    from .io import WriteTargetError, check_write_target, looks_like_model

    if out.is_dir() and not out.is_symlink():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. --out {out / 'model.safetensors'}")
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist (create it first)"
        raise ValueError(f"--out {out}: {folder} {what}")
    try:
        check_write_target(out)
    except WriteTargetError as exc:
        raise WriteTargetError(f"--out {exc}") from None
    if not force and out.exists() and out.stat().st_size and not looks_like_model(out):
        raise ValueError(
            f"--out {out} exists and is not an anynet model; pass --force to replace it, "
            "or choose another file name"
        )
    return folder


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message when the server could not listen on ``host:port``."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot listen on {host}:{port}: unknown address ({exc})") from None
    with socket.socket(family, kind, proto) as sock:
        if os.name != "nt":  # as uvicorn does: a port left in TIME_WAIT is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    f"port {port} on {host} is already in use (another anynet serve?); "
                    "choose another with --port"
                ) from None
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _load_dataset(name, data_dir, quiet):
    from .data import load

    return load(name, data_dir=data_dir, progress=not quiet)


def _split(dataset, which: str):
    if which not in ("train", "test"):
        raise ValueError(f"--split must be 'train' or 'test', got {which!r}")
    return getattr(dataset, which)


def _named(name: str):
    """Give an argparse ``type`` function the name its error messages show."""

    def name_it(func):
        func.__name__ = name
        return func

    return name_it


@_named("widths")
def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.replace(" ", "").split(",") if w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 512,256, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 512,256, got {text!r}")
    return widths


@_named("fraction")
def _fraction_or_none(text: str):
    if text.lower() in ("0", "none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.1 or 'none', got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"validation fraction must be in (0, 1) or 'none', got {text}")
    return value


@_named("port")
def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {value}")
    return value


@_named("positive integer")
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _write_plots(out_dir, history, y_true, y_pred, images, classes, probabilities=None, say=True):
    from .plots import save_report_plots

    paths = save_report_plots(out_dir, history, y_true, y_pred, images, classes, probabilities)
    if say:
        _say("plots: " + ", ".join(str(p) for p in paths))
    return paths


def _require(module: str, extra: str, what: str) -> None:
    """Fail before any work when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{what} needs {module}, which is not installed: pip install 'anynet[{extra}]'")


def _report(y_true, y_pred, classes) -> str:
    from .metrics import classification_report

    return classification_report(y_true, y_pred, classes, top_confusions=8)


# --------------------------------------------------------------------------- threads

#: environment variables that already fix a thread count; ``--threads auto`` follows them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: ``--threads auto`` never picks more: a 128-sample batch's matmuls gain little beyond this
MAX_AUTO_THREADS = 4


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads() -> tuple[int, str]:
    """``--threads auto``: a thread count set in the environment, else the cores the 1-minute
    load average leaves idle, between 1 and :data:`MAX_AUTO_THREADS`; and why."""
    for var in THREAD_VARIABLES:
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value), f"from ${var}"
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available: assume an idle machine
        load = 0.0
    threads = max(1, min(MAX_AUTO_THREADS, cores - round(load)))
    return threads, f"{cores} cores, load average {load:.1f}"


@contextlib.contextmanager
def _thread_limit(args):
    """Run a command with ``--threads`` BLAS / OpenMP threads (and PyTorch's own pool)."""
    choice = getattr(args, "threads", None)
    if choice is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    threads = auto_threads()[0] if choice == "auto" else choice
    from .backend import BackendError, get_backend

    with contextlib.suppress(BackendError):  # an unusable backend is reported by the command
        get_backend(getattr(args, "backend", None) or "cpu").set_threads(threads)  # PyTorch's pool
    with threadpool_limits(limits=threads):
        yield


def _number(what: str, test, expected: str):
    """An argparse type for a finite number for which ``test`` holds (``expected`` says which)."""

    @_named(what)
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return convert


_positive_number = _number("positive number", lambda v: v > 0, "a finite number > 0")
_non_negative_number = _number("number", lambda v: v >= 0, "a finite number >= 0")
_rate = _number("rate", lambda v: 0 <= v < 1, "a number in [0, 1)")


@_named("thread count")
def _threads(text: str):
    if text == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None


def _thread_lines() -> list[str]:
    """The thread pools loaded in this process and what ``--threads auto`` picks here."""
    from threadpoolctl import threadpool_info

    threads, why = auto_threads()
    lines = [f"threads: --threads auto picks {threads} ({why}; at most {MAX_AUTO_THREADS})"]
    for pool in threadpool_info():
        name = pool.get("internal_api") or pool.get("prefix")
        n = pool.get("num_threads")
        label = " ".join(str(x) for x in (name, pool.get("version")) if x)
        lines.append(f"  {label}: {n} thread{'' if n == 1 else 's'} now")
    return lines


# --------------------------------------------------------------------------- commands


def cmd_train(args) -> int:
    from .app.paths import record_last_model
    from .backend import get_backend
    from .training import MODEL_PRESETS, ModelNotSavedError, train

    if args.model not in MODEL_PRESETS:
        raise ValueError(f"unknown model {args.model!r}; choose one of {', '.join(MODEL_PRESETS)}")
    if args.plots:
        _require("matplotlib", "plots", "--plots")
    backend = get_backend(args.backend)  # fail before loading any data
    _check_size(args)
    _check_out(args)
    dataset = _load_dataset(args.dataset, args.data_dir, args.quiet)
    out = None if args.no_save else _out_path(args, dataset.name)
    try:
        result = train(**_train_options(args, backend, dataset, out))
    except ModelNotSavedError as exc:  # a full disk at the end: the model kept elsewhere is the last
        if exc.saved_to is not None:
            record_last_model(exc.saved_to)
        raise
    if result.rank != 0:  # data-parallel: rank 0 alone reports and writes files
        return 0
    if result.path is not None:  # recorded first: a failure below must not lose the model
        record_last_model(result.path)
    _print_train_report(args, result)
    plots = None
    if args.plots and result.test is not None:
        plots = _write_plots(
            args.plots,
            result.history,
            result.test_labels,
            result.test_predictions,
            dataset.test.images,
            result.classes,
            say=False,
        )
    _say_next_steps(result.path, plots)
    return 0


#: values per image in every registered dataset (28 x 28)
IMAGE_VALUES = 28 * 28


def _check_size(args) -> None:
    """Refuse ``--hidden`` widths whose network would have more parameters than a model file
    may hold (:data:`anynet.io.MAX_PARAMETERS`), before anything is allocated."""
    from .data import dataset_info
    from .io import MAX_PARAMETERS
    from .models import MODEL_PRESETS

    if args.hidden is None or MODEL_PRESETS[args.model]["kind"] != "mlp":
        return
    try:
        classes = len(dataset_info(args.dataset).classes)
    except KeyError:  # an unknown dataset: loading it says so
        return
    widths = (IMAGE_VALUES, *args.hidden, classes)
    count = sum(a * b + b for a, b in itertools.pairwise(widths))  # weights and biases
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"--hidden {','.join(map(str, args.hidden))}: that network has {count:,} parameters "
            f"({count * 4 / 2**30:,.1f} GiB of float32 weights alone), above the limit of "
            f"{MAX_PARAMETERS:,} (anynet.io.MAX_PARAMETERS); choose smaller widths"
        )


def _train_options(args, backend, dataset, out) -> dict:
    """``anynet.train`` keyword arguments from the command line."""
    names = (
        "epochs",
        "batch_size",
        "optimizer",
        "lr",
        "schedule",
        "weight_decay",
        "augment",
        "validation",
        "seed",
        "hidden",
        "dropout",
        "limit",
        "checkpoint_dir",
        "resume",
        "class_weight",
        "clip_norm",
        "label_smoothing",
        "distributed",
    )
    return {
        **{name: getattr(args, name) for name in names},
        "dataset": dataset,
        "model": args.model,
        "backend": backend,
        "verbose": 0 if args.quiet else args.verbose,
        "save": out,
    }


def _print_train_report(args, result) -> None:
    """The summary (without what ``train`` already printed) and the per-class table."""
    said = ("saved to",) if args.quiet or not args.verbose else ("saved to", "test accuracy")
    _say("")
    _say("\n".join(line for line in result.summary().splitlines() if not line.startswith(said)))
    if result.test_labels is not None and not args.quiet:
        _say("")
        _say(f"per-class results on the {len(result.test_labels)} test images:")
        _say(_report(result.test_labels, result.test_predictions, result.classes))


def _say_next_steps(path, plots) -> None:
    """Where the model and plots went, and what to run next: one short block."""
    from .app.paths import anynet_home

    _say("")
    if path is not None:
        _say(f"model   {path}")
        _say(f"        (recorded in {anynet_home() / 'last_model'}: the default for the commands below)")
    if plots:
        _say(f"plots   {Path(plots[0]).parent}{os.sep}: {', '.join(Path(p).name for p in plots)}")
    if path is not None:
        _say("next    anynet evaluate          per-class report on the test split")
        _say("        anynet predict IMAGE     top-3 characters for your own picture")
        _say("        anynet serve             draw characters at http://127.0.0.1:8000/")


def cmd_evaluate(args) -> int:
    from .backend import to_numpy
    from .io import load_model

    if args.plots:
        _require("matplotlib", "plots", "--plots")
    path = _model_path(args.model, "evaluate")
    model = load_model(path, backend=args.backend)
    dataset = _load_dataset(args.dataset or model.info.dataset or "mnist", args.data_dir, args.quiet)
    split = _split(dataset, args.split)
    images, labels = split.images[: args.limit], split.labels[: args.limit]
    classes = tuple(model.classes) if model.classes else tuple(dataset.classes)
    if model.num_outputs != dataset.num_classes:
        raise ValueError(
            f"{path} has {model.num_outputs} outputs but dataset {dataset.name!r} has "
            f"{dataset.num_classes} classes; pass the dataset it was trained on (--dataset)"
        )
    start = time.perf_counter()
    probs = np.asarray(to_numpy(model.predict_proba(images)), dtype=np.float64)
    scores = model.evaluate(images, labels)
    seconds = time.perf_counter() - start
    y_pred = probs.argmax(axis=1)
    _say(f"model    {path}")
    _say(
        f"data     {dataset.name} {args.split} split: {len(labels)} images, {len(classes)} classes "
        f"({seconds:.2f} s on {model.backend.spec})"
    )
    _say(f"loss     {scores['loss']:.4f} ({model.loss.name})")
    _say(_report(labels, y_pred, classes))
    if args.plots:
        _write_plots(args.plots, model.info.history, labels, y_pred, images, classes, probs)
    return 0


def cmd_predict(args) -> int:
    from .io import load_model

    path = _model_path(args.model, "predict")
    model = load_model(path, backend=args.backend)
    if args.images:
        return _predict_files(model, args)
    return _predict_dataset(model, args)


def _format_top(top) -> str:
    return "   ".join(f"{c} {p:6.1%}" for c, p in top)


def _predict_files(model, args) -> int:
    from .predict import predict_files

    results = predict_files(model, args.images, k=args.top, show_dir=args.show)
    width = max(len(r.path) for r in results)
    failed = 0
    for r in results:
        if r.error:
            failed += 1
            _say(f"anynet: error: {r.path}: {r.error}", file=sys.stderr)
        else:
            _say(f"{r.path:<{width}}  {_format_top(r.top)}")
    if args.show:
        _say(f"what the network saw: {Path(args.show)}{os.sep}")
    return 1 if failed else 0


def _predict_dataset(model, args) -> int:
    from .predict import class_names, show_image, top_k

    dataset = _load_dataset(args.dataset, args.data_dir, True)
    split = _split(dataset, args.split)
    n = min(args.limit, len(split))
    images, labels = split.images[:n], split.labels[:n]
    if model.num_outputs != dataset.num_classes:
        raise ValueError(
            f"the model has {model.num_outputs} outputs but dataset {dataset.name!r} "
            f"has {dataset.num_classes} classes"
        )
    names = class_names(model)
    tops = top_k(model, images, k=args.top)
    right = 0
    for i, (label, top) in enumerate(zip(labels, tops)):
        truth = names[label]
        ok = top[0][0] == truth
        right += ok
        _say(f"#{i:<5d} true {truth}  {'ok   ' if ok else 'WRONG'}  {_format_top(top)}")
        if args.show:
            out = Path(args.show)
            out.mkdir(parents=True, exist_ok=True)
            show_image(images[i], images[i], f"true {truth}, read {top[0][0]} {top[0][1]:.1%}").save(
                out / f"{dataset.name}-{args.split}-{i:05d}.png"
            )
    _say(f"{right} of {n} correct ({right / n:.1%})")
    return 0


def cmd_serve(args) -> int:
    for module in ("fastapi", "uvicorn"):
        _require(module, "serve", "anynet serve")
    path = _model_path(args.model, "serve")
    _check_port(args.host, args.port)
    try:
        from .app.server import serve
    except ImportError as exc:
        raise ImportError(f"anynet serve needs {exc.name}: pip install 'anynet[serve]'") from None
    limits = {name: getattr(args, name) for name in SERVE_LIMITS if getattr(args, name) is not None}
    serve(
        model_path=path,
        host=args.host,
        port=args.port,
        backend=args.backend,
        allowed_hosts=args.allowed_host or (),
        allowed_origins=args.allowed_origin or (),
        **limits,
    )
    return 0


def _datasets_present(data_dir) -> list[str]:
    """One line per registered dataset: where its files are, or how many are missing."""
    import warnings

    from .data import DataError, dataset_info, dataset_names
    from .data.fetch import fetch_file

    lines = []
    for name in dataset_names():
        info = dataset_info(name)
        found = []
        for finfo in info.files.values():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    found.append(fetch_file(finfo, info.folder, data_dir, download=False, progress=False))
            except DataError:
                pass
        total = len(info.files)
        if len(found) == total:
            folders = sorted({str(Path(p).parent) for p in found})
            lines.append(f"  {name:<18s} present in {', '.join(folders)}")
        elif found:
            lines.append(
                f"  {name:<18s} partial: {len(found)} of {total} files (the rest download on first use)"
            )
        else:
            lines.append(f"  {name:<18s} not present (downloads on first use)")
    return lines


def _backend_lines() -> list[str]:
    """One line per backend: usable ones with version and device, the others with the reason."""
    from .backend import available_backends, get_backend, unavailable_backends

    lines = ["backends available:"]
    for name in available_backends():
        b = get_backend(name)
        lines.append(f"  {name:<18s} {b.module.__name__} {b.version}, device {b.spec}")
        lines += [f"  {'':<18s} {device}" for device in b.describe_devices()]
    lines.append(f"  {'auto':<18s} picks {get_backend('auto').spec}")
    missing = unavailable_backends()
    if missing:
        lines.append("backends not usable here:")
        lines += [f"  {name:<18s} {reason}" for name, reason in missing.items()]
    return lines


def _package_line() -> str:
    """``packages: numpy 2.4.6, torch not installed, ...``."""
    from importlib.metadata import PackageNotFoundError, version

    from .backend import package_versions

    found = package_versions()
    try:
        found["threadpoolctl"] = version("threadpoolctl")
    except PackageNotFoundError:
        found["threadpoolctl"] = None
    return "packages: " + ", ".join(f"{name} {v or 'not installed'}" for name, v in found.items())


def cmd_info(args) -> int:
    import platform

    from ._version import __version__
    from .app.paths import anynet_home

    _say(
        f"anynet {__version__} (Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    for line in [_package_line(), *_backend_lines(), *_thread_lines()]:
        _say(line)
    from .data.fetch import cache_dir, data_dirs

    _say("data directories searched (in order):")
    for origin, path in data_dirs(args.data_dir):
        _say(f"  {origin}: {path}{'' if path.is_dir() else '  (missing)'}")
    _say(f"  download cache: {cache_dir()}")
    _say("datasets:")
    for line in _datasets_present(args.data_dir):
        _say(line)
    home = anynet_home()
    _say(f"anynet home: {home}")
    record = home / "last_model"
    last = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    _say(f"last trained model: {last or 'none yet (run anynet train)'}")
    for extra, module, pip in (
        ("plots", "matplotlib", "anynet[plots]"),
        ("serve", "fastapi", "anynet[serve]"),
    ):
        try:
            __import__(module)
            state = "installed"
        except ImportError:
            state = f"not installed (pip install '{pip}')"
        _say(f"extra {extra:<6s} {state}")
    return 0


# --------------------------------------------------------------------------- parser


def _backend_help() -> str:
    from .backend import KNOWN

    return f"auto, cpu, or a library: {', '.join(KNOWN)} (':device' picks a device, e.g. ':cuda:1')"


def _model_options(p) -> None:
    """``--model FILE`` and ``--backend``: for the commands that use a saved model."""
    p.add_argument(
        "--model", "-m", metavar="FILE", default=None, help="model file (default: the last trained)"
    )
    p.add_argument("--backend", default="cpu", help=_backend_help())
    _threads_option(p)


def _command(sub, name: str, func, help: str, description: str, data: bool = True):
    """A subcommand's parser with the options every command takes; ``func`` runs it."""
    p = sub.add_parser(name, help=help, description=description, formatter_class=_Formatter)
    _common(p, data)
    p.set_defaults(func=func, parser=p)
    return p


def _threads_option(p) -> None:
    """``--threads``: for the commands that compute."""
    p.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        metavar="N",
        help="BLAS / OpenMP threads; 'auto': $OMP_NUM_THREADS or $OPENBLAS_NUM_THREADS if set, "
        f"else the idle cores, 1 to {MAX_AUTO_THREADS} (see anynet info)",
    )


def _common(p, data: bool = True) -> None:
    """Options every command takes."""
    if data:
        p.add_argument(
            "--data-dir",
            metavar="DIR",
            default=None,
            help="folder with dataset files, searched first (default: $ANYNET_DATA_DIR, then the cache)",
        )
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )


def _add_train(sub) -> None:
    """``anynet train``."""
    p = _command(
        sub,
        "train",
        cmd_train,
        "train a model and save it",
        "Train a model, report test accuracy per class, save it and record "
        "it as the last model (for evaluate / predict / serve).",
    )
    _train_model_args(p)
    _train_optimizer_args(p)
    _train_data_args(p)
    _train_output_args(p)


def _train_model_args(p) -> None:
    """``anynet train``: the data set, the model and how long to train."""
    p.add_argument(
        "--dataset",
        "-d",
        default="mnist",
        help="mnist, emnist-balanced, emnist-standin (offline EMNIST-47), emnist-digits, ...",
    )
    p.add_argument(
        "--model", "-m", default="mlp", help="a preset: mlp-small, mlp, mlp-large, cnn or cnn-large"
    )
    p.add_argument(
        "--epochs",
        "-e",
        type=_positive_int,
        default=None,
        help="passes over the data (default: the preset's, e.g. 15 for mlp)",
    )
    p.add_argument("--batch-size", "-b", type=_positive_int, default=128, help="samples per step")


def _train_optimizer_args(p) -> None:
    """``anynet train``: the optimizer, schedule and regularisation."""
    p.add_argument(
        "--lr",
        type=_positive_number,
        default=None,
        help="base learning rate (default: adam 1e-3 (2e-3 for mlp-small), sgd 0.05)",
    )
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd", "gd"], help="optimizer")
    p.add_argument(
        "--schedule",
        default="cosine",
        choices=["cosine", "step", "constant", "warmup", "warmup-cosine", "onecycle"],
        help="learning-rate schedule (warmup, warmup-cosine and onecycle change it every step)",
    )
    p.add_argument(
        "--clip-norm",
        type=_positive_number,
        default=None,
        metavar="X",
        help="clip the gradients' global L2 norm to X",
    )
    p.add_argument(
        "--distributed",
        choices=["mpi", "nccl"],
        default=None,
        help="data-parallel over the processes of mpiexec (docs/cluster.md): mpi, or nccl for several GPUs",
    )
    p.add_argument(
        "--class-weight",
        choices=["balanced"],
        default=None,
        help="weight each class's loss by the inverse of its frequency",
    )
    p.add_argument(
        "--weight-decay",
        type=_non_negative_number,
        default=0.0,
        help="weight decay (L2; decoupled for adamw)",
    )
    p.add_argument(
        "--label-smoothing",
        type=_rate,
        default=0.0,
        metavar="EPS",
        help="cross-entropy label smoothing: targets (1-EPS)*onehot + EPS/classes (default 0)",
    )


def _train_data_args(p) -> None:
    """``anynet train``: widths, augmentation, the validation split and where it runs."""
    p.add_argument(
        "--hidden",
        type=_hidden,
        default=None,
        metavar="W1,W2,...",
        help="hidden widths (default: the model's)",
    )
    p.add_argument("--dropout", type=_rate, default=None, help="dropout rate (default: the model's)")
    p.add_argument(
        "--augment",
        default="none",
        choices=["none", "standard"],
        help="random rotation / scaling / shifts / elastic distortion of training images",
    )
    p.add_argument(
        "--validation",
        type=_fraction_or_none,
        default=0.1,
        metavar="FRACTION",
        help="share of the training data held out for validation ('none' to train on all)",
    )
    p.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on a stratified subset of N training images (quick runs)",
    )
    p.add_argument("--backend", default="auto", help=_backend_help())
    _threads_option(p)


def _train_output_args(p) -> None:
    """``anynet train``: seed, outputs, console and checkpoints."""
    p.add_argument("--seed", type=int, default=0, help="seed for the split, weights, shuffles and dropout")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        default=None,
        help="model file to write, in an existing folder; an anynet model already there is replaced, "
        "any other file only with --force (default: "
        "$ANYNET_HOME/models/<dataset>-<model>-<time>.safetensors)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out file that is not an anynet model (folders, FIFOs, devices, "
        "sockets and symbolic links are never replaced)",
    )
    p.add_argument("--no-save", action="store_true", help="do not save the model")
    p.add_argument(
        "--plots",
        metavar="DIR",
        default=None,
        help="write history.png, confusion.png and misclassified.png into DIR",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no per-class table")
    p.add_argument(
        "--verbose",
        "-v",
        type=int,
        choices=[0, 1, 2],
        default=1,
        help="0 silent, 1 a progress bar (one line per epoch when not on a terminal), 2 one line per epoch",
    )
    p.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        default=None,
        help="write a resumable checkpoint there every epoch (Ctrl-C saves one too)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="auto",
        type=_resume,
        help="continue the run saved in --checkpoint-dir ('--resume auto': only if a checkpoint is there)",
    )


@_named("'auto'")
def _resume(text: str):
    if text != "auto":
        raise argparse.ArgumentTypeError(f"--resume takes no value or 'auto', not {text!r}")
    return "auto"


def _add_evaluate(sub) -> None:
    """``anynet evaluate``."""
    p = _command(
        sub,
        "evaluate",
        cmd_evaluate,
        "accuracy and per-class report of a saved model",
        "Evaluate a saved model on a dataset split: accuracy, balanced "
        "accuracy, per-class table and most confused pairs.",
    )
    _model_options(p)
    p.add_argument(
        "--dataset", "-d", default=None, help="dataset (default: the one the model was trained on)"
    )
    p.add_argument("--split", default="test", choices=["test", "train"], help="which split")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="only the first N images")
    p.add_argument(
        "--plots", metavar="DIR", default=None, help="write confusion.png and misclassified.png into DIR"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no download progress bar")


def _add_predict(sub) -> None:
    """``anynet predict``."""
    p = _command(
        sub,
        "predict",
        cmd_predict,
        "top-3 characters for image files or dataset samples",
        "Print the most likely characters, with probabilities, for each "
        "image (any size or colour: it is prepared MNIST-style first), or "
        "for the first N samples of a dataset split.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    _model_options(p)
    p.add_argument("--dataset", "-d", default=None, help="predict samples of this dataset instead of files")
    p.add_argument("--split", default="test", choices=["test", "train"], help="split, with --dataset")
    p.add_argument("--limit", type=_positive_int, default=10, metavar="N", help="samples, with --dataset")
    p.add_argument("--top", "-k", type=_positive_int, default=3, help="how many guesses to show")
    p.add_argument(
        "--show",
        metavar="DIR",
        default=None,
        help="write a PNG per input showing the 28x28 image the network saw",
    )


def _add_serve(sub) -> None:
    """``anynet serve``."""
    p = _command(
        sub,
        "serve",
        cmd_serve,
        "web page to draw characters and see predictions",
        "Serve the drawing page and its HTTP API with a saved model.",
        data=False,
    )
    _model_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=_port, default=8000, help="port (1-65535)")
    _serve_limits(p)


#: ``anynet serve`` options passed on to :func:`anynet.app.server.serve` when given (its own
#: defaults apply otherwise; see docs/serving.md)
SERVE_LIMITS = {
    "max_image_bytes": (int, "N", "largest image accepted, in bytes (default 2 MiB)"),
    "max_pixels": (int, "N", "largest image, width x height, checked before decoding (default 25 M)"),
    "max_concurrent": (int, "N", "decodes and predictions running at once (default 2)"),
    "queue_timeout": (float, "S", "seconds a request may wait for a slot, then 503 (default 10)"),
    "body_timeout": (float, "S", "seconds to receive a request body, then 408 (default 30)"),
    "header_timeout": (float, "S", "seconds to receive a request's headers, then 408 (default 10)"),
    "keep_alive_timeout": (int, "S", "seconds an idle connection stays open (default 5)"),
    "max_connections": (int, "N", "connections at once, then 503 (default 100)"),
}


def _serve_limits(p) -> None:
    """The server's limits and allow-lists (documented in docs/serving.md)."""
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name (repeatable; the localhost names and --host always)",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        metavar="URL",
        help="accept POSTs from pages of this origin (repeatable)",
    )
    for name, (kind, metavar, text) in SERVE_LIMITS.items():
        convert = _positive_int if kind is int else _positive_float
        p.add_argument("--" + name.replace("_", "-"), type=convert, metavar=metavar, help=text)


@_named("positive number")
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_sweep(sub) -> None:
    """``anynet sweep``."""
    from .tune import add_sweep_arguments

    p = _command(
        sub,
        "sweep",
        cmd_sweep,
        "search hyperparameters (Ray Tune, or one trial after another)",
        "Train one model per point of a search space (learning rate, widths, model kind, "
        "augmentation, ...), stop bad trials early with ASHA under Ray Tune, and write a "
        "results table and the best model (docs/cluster.md).",
    )
    p.add_argument("--dataset", "-d", default="mnist", help="dataset to train and score on")
    add_sweep_arguments(p)


def cmd_sweep(args) -> int:
    from .tune import run_sweep_command

    return run_sweep_command(args)


def _add_info(sub) -> None:
    """``anynet info``."""
    _command(
        sub,
        "info",
        cmd_info,
        "versions, backends and devices, data found locally",
        "Show the anynet version, the array backends and devices usable here, "
        "where data is searched and cached, and which datasets are present.",
    )


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="anynet",
        description="Train and use from-scratch neural networks for handwritten digits and "
        "characters (MNIST, EMNIST) on NumPy, CuPy, PyTorch, ...",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"anynet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_predict, _add_serve, _add_sweep, _add_info):
        add(sub)
    return parser


# --------------------------------------------------------------------------- entry point


def _expected_errors() -> tuple[type[BaseException], ...]:
    from .backend import BackendError
    from .io import ModelFileError

    errors: list[type[BaseException]] = [
        BackendError,
        ModelFileError,
        ValueError,
        KeyError,
        OSError,
        ImportError,
        FloatingPointError,
    ]
    try:
        from .data import DataError

        errors.append(DataError)
    except ImportError:
        pass
    try:
        from .distributed.comm import DistributedError

        errors.append(DistributedError)
    except ImportError:
        pass
    return tuple(errors)


def _out_of_memory(exc: BaseException) -> bool:
    """A host ``MemoryError``, or a device one (PyTorch's and CuPy's ``OutOfMemoryError``)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def _error_lines(exc: BaseException) -> list[str]:
    """What ``anynet: error:`` reports for ``exc``: its message, a memory hint, or a bug."""
    text = _message(exc).strip()
    if _out_of_memory(exc):
        detail = f" ({text})" if str(exc).strip() else ""
        text = (
            f"the model or the data does not fit in memory{detail}; "
            "try smaller widths, a smaller --batch-size or --limit"
        )
    elif not isinstance(exc, _expected_errors()):
        text = f"unexpected {type(exc).__name__}: {text} (this is a bug; run again with --debug for the traceback)"
    return text.splitlines() or [type(exc).__name__]


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def main(argv=None) -> int:
    """Run the ``anynet`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "predict" and bool(args.images) == bool(args.dataset):
        try:
            args.parser.error("give image files or --dataset NAME (one of the two)")
        except SystemExit as exc:
            return int(exc.code or 2)
    try:
        with _thread_limit(args):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _say("anynet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # one line (--debug: the traceback); "a bug" unless expected
        if args.debug:
            raise
        first, *more = _error_lines(exc)
        _say(f"anynet: error: {first}", file=sys.stderr)
        for line in more:
            _say(f"  {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
