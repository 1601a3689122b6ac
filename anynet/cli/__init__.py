"""The ``anynet`` command: train, evaluate, predict, serve, sweep, info.

    anynet train                                   # MNIST, the default MLP, saved and recorded
    anynet train --dataset emnist-standin --model mlp-large --augment standard --plots plots/
    anynet evaluate --model FILE --dataset mnist
    anynet predict seven.png two.jpg               # uses the last trained model
    anynet predict --dataset mnist --limit 10 --model FILE
    anynet serve                                   # the drawing page, with the last trained model
    anynet sweep -p lr=loguniform:1e-4:1e-2 --epochs 3
    anynet info

``anynet train`` saves to ``--out`` (default ``$ANYNET_HOME/models/<dataset>-<model>-<time>.safetensors``,
``ANYNET_HOME`` defaulting to ``~/.anynet``) and records that path in ``$ANYNET_HOME/last_model``;
``evaluate``, ``predict`` and ``serve`` use the recorded model when ``--model`` is not given.

Errors are reported as one ``anynet: error: ...`` message on stderr with exit status 1 (2 for
bad command-line usage); ``--debug`` shows the traceback instead.

One module per command (:mod:`.train`, :mod:`.evaluate`, :mod:`.predict`, :mod:`.serve`,
:mod:`.sweep`, :mod:`.info`), each with ``add(subparsers)`` and the function that runs it;
:mod:`.entry` builds the parser and runs a command (:func:`main`); :mod:`.common` holds what the
commands share, :mod:`.threads` the ``--threads`` option and :mod:`.outfile` the checks of
``anynet train --out``.
"""

from .entry import build_parser, main

__all__ = ["build_parser", "main"]
