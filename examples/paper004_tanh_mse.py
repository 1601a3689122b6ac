"""Paper 004 reproduced: a 784-100-50-10 tanh network trained with mean squared error on the
first 2,000 MNIST training images (Layer / FCLayer / ActivationLayer / Network in the paper;
Dense / Tanh / Network here).

The paper's setup (its Figure 11 and the code it follows, Omar Aflak's "Neural Network from
scratch in Python"):

- ``FCLayer(784, 100)``, tanh, ``FCLayer(100, 50)``, tanh, ``FCLayer(50, 10)``, tanh: the output
  layer is tanh too, trained towards one-hot targets;
- MSE ``mean((y - y*)^2)`` over the 10 outputs, derivative ``2 (y - y*) / 10``;
- ``fit(x_train[0:2000], y_train[0:2000], epochs=50, lr=0.1)``: the first 2,000 images in file
  order, one gradient step per image (batch size 1, no shuffling), learning rate 0.1,
  50 epochs;
- weights and biases uniform in [-0.5, 0.5] (``np.random.rand(...) - 0.5``); pixels / 255.

The paper shows a falling MSE curve and a few correct predictions but reports no test
accuracy; we report accuracy on all 10,000 MNIST test images (and on the 2,000 training ones).

    OPENBLAS_NUM_THREADS=1 python examples/paper004_tanh_mse.py --data-dir /work/shared/data
"""

from __future__ import annotations

import time

import _paperkit as kit

import anynet


def main(argv=None):
    p = kit.parser(__doc__.split("\n\n")[0])
    p.add_argument("--train-size", type=int, default=2000, help="first N training images")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--shuffle", action="store_true", help="shuffle each epoch (the paper does not)")
    p.add_argument(
        "--init",
        choices=["paper", "glorot"],
        default="paper",
        help="paper: weights and biases uniform in [-0.5, 0.5]; glorot: anynet's",
    )
    p.add_argument("--every", type=int, default=10, help="print accuracy every N epochs")
    args = p.parse_args(argv)

    ds = kit.load("mnist", args.data_dir)
    n = args.train_size
    x_train, y_train = kit.as_float(ds.train.images[:n]), ds.train.labels[:n]
    x_test, y_test = kit.as_float(ds.test.images), ds.test.labels
    net = anynet.Network(
        [
            anynet.Dense(100, init="glorot"),
            anynet.Tanh(),
            anynet.Dense(50, init="glorot"),
            anynet.Tanh(),
            anynet.Dense(10, init="glorot"),
            anynet.Tanh(),
        ],
        loss="mse",
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
        f"784-100-50-10 tanh (tanh outputs), MSE, gradient descent batch {args.batch_size}, "
        f"lr {args.lr:g}, init {args.init}, {args.epochs} epochs on the first {n:,} MNIST "
        f"training images, backend {net.backend.spec}\n"
    )

    ckpt = kit.Checkpoints(
        kit.checkpoint_epochs(args.epochs, args.every), (x_train, y_train), (x_test, y_test), label="epoch"
    )
    t0 = time.perf_counter()
    history = net.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        shuffle=args.shuffle,
        callbacks=[ckpt],
    )
    wall = time.perf_counter() - t0
    _, train_acc, test_acc, _ = ckpt.rows[-1]
    print()
    print(
        kit.side_by_side(
            [
                ("final training MSE", '"way too low" (plot only)', f"{history['loss'][-1]:.4f}"),
                ("train accuracy (2,000 images)", "not reported", f"{train_acc:.1%}"),
                ("test accuracy (10,000 images)", "not reported", f"{test_acc:.1%}"),
                ("training time", "not reported", f"{wall:.0f} s (incl. checkpoints)"),
            ]
        )
    )


if __name__ == "__main__":
    main()
