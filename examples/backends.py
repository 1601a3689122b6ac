"""Train the same tiny network on every array backend installed here, side by side.

    python examples/backends.py

The weights start identical everywhere (drawn on the host from the seed); the results differ
only by each library's float32 rounding and its own shuffling random numbers.
"""

import time

import numpy as np

import anynet


def two_spirals(n_per_class=300, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1.0, n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.015, (2 * n_per_class, 2))
    y = np.repeat(np.array([0, 1]), n_per_class)
    return x.astype(np.float32), y


def main():
    x, y = two_spirals()
    specs = [*anynet.available_backends(), "array_api_strict:device1"]
    print(f"{'backend':28s} {'train acc':>9s} {'loss':>8s} {'seconds':>8s}")
    for spec in specs:
        try:
            backend = anynet.get_backend(spec)
        except anynet.BackendError as exc:
            print(f"{spec:28s} skipped: {exc}")
            continue
        net = anynet.mlp((64, 64), num_classes=2, backend=backend, seed=0, optimizer=anynet.Adam(lr=0.01))
        start = time.perf_counter()
        history = net.fit(x, y, epochs=100, batch_size=32)
        seconds = time.perf_counter() - start
        accuracy = net.evaluate(x, y)["accuracy"]
        print(f"{backend.spec:28s} {accuracy:9.3f} {history['loss'][-1]:8.4f} {seconds:8.2f}")


if __name__ == "__main__":
    main()
