"""Paper 003 reproduced: a 784-10-10 ReLU/softmax network trained by vectorised full-batch
gradient descent on MNIST; the paper reports "a training accuracy of about 85%".

Setup, as in the paper: 784 inputs (pixels / 255), one hidden layer of 10 ReLU units, 10
softmax outputs, cross-entropy (its backward pass is the paper's ``dZ2 = A2 - Y``, averaged
over the m samples), plain gradient descent on the whole training set at once.

Not stated in the paper, so assumed: learning rate 0.1 and 500 iterations, with weights and
biases uniform in [-0.5, 0.5]: the values of the widely copied "neural network from scratch"
notebook (Samson Zhang) whose equations the paper reproduces line for line. The paper does not
say which images it trained on; we use the 60,000 MNIST training images and also report the
accuracy on the 10,000 test images, which the paper does not.

    OPENBLAS_NUM_THREADS=1 python examples/paper003_784_10_10.py --data-dir /work/shared/data
"""

from __future__ import annotations

import _paperkit as kit

import anynet

REPORTED_TRAIN = 0.85


def main(argv=None):
    p = kit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument(
        "--init",
        choices=["paper", "he"],
        default="paper",
        help="paper: weights and biases uniform in [-0.5, 0.5]; he: anynet's default",
    )
    p.add_argument("--every", type=int, default=50, help="print accuracy every N iterations")
    args = p.parse_args(argv)

    ds = kit.load("mnist", args.data_dir)
    x_train, y_train = kit.as_float(ds.train.images), ds.train.labels
    x_test, y_test = kit.as_float(ds.test.images), ds.test.labels
    net = anynet.Network(
        [anynet.Dense(10), anynet.ReLU(), anynet.Dense(10)],
        loss="cross_entropy",
        optimizer=anynet.GradientDescent(args.lr),
        backend=args.backend,
        seed=args.seed,
        dtype=args.dtype,
        classes=ds.classes,
        input_shape=(784,),
    )
    if args.init == "paper":
        kit.uniform_init(net, -0.5, 0.5, args.seed, biases="same")
    print(
        f"784-10-10 ReLU/softmax, cross-entropy, full-batch gradient descent, lr {args.lr:g}, "
        f"init {args.init}, {args.iterations} iterations on {len(x_train):,} MNIST images, "
        f"backend {net.backend.spec}\n"
    )

    ckpt, wall = kit.full_batch_run(net, (x_train, y_train), (x_test, y_test), args.iterations, args.every)
    _, train_acc, test_acc, _ = ckpt.rows[-1]
    print()
    print(
        kit.side_by_side(
            [
                ("training accuracy", f"~{REPORTED_TRAIN:.0%}", f"{train_acc:.1%}"),
                ("test accuracy", "not reported", f"{test_acc:.1%}"),
                ("iterations / lr", "not stated", f"{args.iterations} / {args.lr:g}"),
                ("training time", "not reported", f"{wall:.0f} s (incl. checkpoints)"),
            ]
        )
    )


if __name__ == "__main__":
    main()
