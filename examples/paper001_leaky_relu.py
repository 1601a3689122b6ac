"""Paper 001 reproduced: an L-layer leaky-ReLU network with a softmax output and cross-entropy,
trained by plain gradient descent on MNIST; the paper reports 95 % "within a two hour time
span".

Setup. From the paper: leaky ReLU ``x if x >= 0 else x / 100`` on every layer but the last,
softmax output, cross-entropy summed over the samples, gradient descent with a constant
learning rate on the whole training set, bias folded into the weights (an extra input fixed at
1: the same as a Dense layer's bias). From the code the paper points to
(gitlab guillermocreus98/digit-recognition, mirrored as guillermocreus/digit-recognition-from-
scratch, ``neural_network/neural_net_class.py``): L = 4 weight layers 784-20-20-20-10,
4,000 full-batch iterations at learning rate 0.2.

Where ours differs:

- Their loss is a *sum* over samples and each layer's pre-activation is multiplied by a
  hand-tuned "factor" (1.25e-3 ... 1e-2, the paper's "factors' vector"), with weights
  sqrt(2 / fan_in) * uniform(0, 1). We use anynet's mean cross-entropy, He initialisation
  (the same sqrt(2 / fan_in) scale, zero-mean) and no factors, so their lr 0.2 does not carry
  over: we use lr 0.5, the best of {0.1, 0.3, 0.5, 1.0} on a validation split (500 iterations
  on 20,000 training images: 92.2 %, 93.6 %, 93.8 %, 85.8 %).
- Their code's leaky slope is 1e-3; the paper's is 1/100, which we use.
- They trained on 33,600 images of Kaggle's MNIST train.csv and tested on the other 8,400;
  we use the standard 60,000 / 10,000 MNIST split.
- Default 1,000 iterations (fast); ``--iterations 4000`` is their run length. Beware:
  constant-rate full-batch descent on this narrow net is not stable over long runs: with
  lr 0.5 test accuracy reaches 94.9 % at 1,250 iterations, then drops to 59 % at 1,500 and
  only partly recovers (91.1 % at 4,000); with lr 0.3 it passes 95 % at 1,500 (peak 95.8 %)
  and drops again at 4,000 (69.7 %). The result depends on where one stops.

    OPENBLAS_NUM_THREADS=1 python examples/paper001_leaky_relu.py --data-dir /work/shared/data
    OPENBLAS_NUM_THREADS=1 python examples/paper001_leaky_relu.py --iterations 4000
"""

from __future__ import annotations

import _paperkit as kit

import anynet

REPORTED = 0.95


def main(argv=None):
    p = kit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[20, 20, 20],
        help="hidden widths (default 20 20 20: L = 4 weight layers)",
    )
    p.add_argument("--alpha", type=float, default=0.01, help="leaky ReLU slope for x < 0")
    p.add_argument("--every", type=int, default=100, help="print accuracy every N iterations")
    args = p.parse_args(argv)

    ds = kit.load("mnist", args.data_dir)
    x_train, y_train = kit.as_float(ds.train.images), ds.train.labels
    x_test, y_test = kit.as_float(ds.test.images), ds.test.labels
    layers = []
    for width in args.hidden:
        layers += [anynet.Dense(width, init="he"), anynet.LeakyReLU(args.alpha)]
    layers.append(anynet.Dense(10, init="glorot"))
    net = anynet.Network(
        layers,
        loss="cross_entropy",
        optimizer=anynet.GradientDescent(args.lr),
        backend=args.backend,
        seed=args.seed,
        dtype=args.dtype,
        classes=ds.classes,
        input_shape=(784,),
    )
    arch = "-".join(str(w) for w in [784, *args.hidden, 10])
    print(
        f"{arch} leaky ReLU (alpha {args.alpha:g}) / softmax, cross-entropy, full-batch "
        f"gradient descent, lr {args.lr:g}, {args.iterations} iterations on "
        f"{len(x_train):,} MNIST images, backend {net.backend.spec}\n"
    )

    ckpt, wall = kit.full_batch_run(net, (x_train, y_train), (x_test, y_test), args.iterations, args.every)
    _, train_acc, test_acc, _ = ckpt.rows[-1]
    reached = next((r for r in ckpt.rows if r[2] >= REPORTED), None)
    print()
    print(
        kit.side_by_side(
            [
                ("test accuracy", f'{REPORTED:.0%} ("precision")', f"{test_acc:.2%}"),
                ("train accuracy", "not reported", f"{train_acc:.2%}"),
                ("time", "~2 hours", f"{wall / 60:.1f} min (incl. checkpoints)"),
                (
                    "first checkpoint at >= 95% test",
                    "-",
                    f"iteration {reached[0]}, {reached[3] / 60:.1f} min" if reached else "not reached",
                ),
            ]
        )
    )


if __name__ == "__main__":
    main()
