"""A compiled training step (``fit(..., compile=True)``), on libraries that compile (JAX).

The step is anynet's own: the layers' forward and hand-written backward passes, the loss, the
optimizer's update (its array work, :meth:`~anynet.optimizers.Optimizer.apply`), written once
against the Array API, traced as one pure function of the parameters, buffers, optimizer
moments, the step's host numbers (learning rate, bias corrections) and random keys, and compiled
by the library (``jax.jit``): nothing comes from ``jax.grad``. The host side of a step (the step
count, the schedule, the divergence count, the subnormal flush every 64 steps) runs around it.

Dropout masks inside the compiled step come from the library's counter-based generator, keyed
by the run's seed, the epoch, the layer and the step: a compiled run is repeatable and resumes
exactly, but its masks are not the host generator's (``random="host"``) of an uncompiled run.

A network keeps its compiled step across ``fit`` calls while its loss, optimizer and settings
stay the same (the trace holds them); any change is traced anew.
"""

from __future__ import annotations

import weakref
from typing import Any

from .seeding import derive_seed

__all__ = ["CompiledStep", "compiled_step"]

#: each network's compiled step (held weakly: it goes with the network)
_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_step(net: Any, loss: Any, seed: int) -> CompiledStep:
    """``net``'s compiled step for the training loss ``loss`` (``None``: the network's own),
    its dropout keyed by ``seed``: the one compiled before, where nothing it holds changed."""
    loss = net.loss if loss is None else loss
    traced = _traced_settings(net)
    step = _STEPS.get(net)
    if (
        step is None
        or step.loss_fn is not loss
        or step.optimizer is not net.optimizer
        or step.traced != traced
    ):
        step = _STEPS[net] = CompiledStep(net, loss, traced)
    step.seed = seed
    return step


def _traced_settings(net: Any) -> tuple:
    """What a trace holds as constants: the backend, the dtype, every layer's and the
    optimizer's settings (the learning rate and the step's other host numbers are arguments, not constants)."""
    config = {k: v for k, v in net.optimizer.get_config().items() if k != "lr"}
    return (
        net.backend.spec,
        str(net.dtype),
        repr(config),
        *(repr(layer.get_config()) for layer in net.layers),
    )


class CompiledStep:
    """``step(epoch, step, xb, tb) -> (loss, hits)`` for ``net`` with the training loss
    ``loss_fn``; ``seed`` (set per run), the epoch and the step key its dropout masks."""

    def __init__(self, net: Any, loss_fn: Any, traced: tuple):
        self._net = weakref.ref(net)  # (the cache holds this step for as long as the network lives)
        self.loss_fn, self.optimizer, self.traced, self.seed = loss_fn, net.optimizer, traced, 0
        self.compiled, self.compiled_take = net.backend.jit(self._pure), net.backend.jit(self._pure_take)
        if self.compiled is None:
            raise ValueError(
                f"compile=True (--compile) needs a backend that compiles training steps (jax), not {net.backend.spec}"
            )
        self.random_layers = [i for i, layer in enumerate(net.layers) if layer.draws_random]

    @property
    def net(self) -> Any:
        return self._net()

    def __call__(self, epoch: int, step: int, xb: Any, tb: Any) -> tuple[Any, Any]:
        return self._run(self.compiled, epoch, step, xb, tb)

    def take_and_step(self, epoch: int, step: int, batches: Any, order: Any) -> tuple[Any, Any]:
        """Step ``step`` on its batch of ``batches`` in the epoch's ``order``, the batch taken
        inside the compiled function (an eager take per step costs as much as the step)."""
        if order is None:
            return self(epoch, step, *batches.take(None, step))
        lo, hi = batches.bounds(step)
        return self._run(self.compiled_take, epoch, step, batches.x, batches.targets, order[lo:hi])

    def _run(self, compiled: Any, epoch: int, step: int, *batch: Any) -> tuple[Any, Any]:
        """``compiled`` on the network's state and ``batch``; the new state stored back."""
        net, opt = self.net, self.net.optimizer
        opt.begin_step()
        seeds = [derive_seed(self.seed, epoch, 1 + i) for i in self.random_layers]
        keys = net.backend.step_keys(seeds, step)
        params = [dict(layer.params) for layer in net.layers]
        buffers = [dict(layer.buffers) for layer in net.layers]
        state = {name: dict(slots) for name, slots in opt.state.items()} if opt.state else self._zeros(params)
        owners = [opt, *net.layers]
        saved = [dict(vars(owner)) for owner in owners]
        out = compiled(params, buffers, state, opt.step_constants(), keys, *batch)
        for owner, attributes in zip(owners, saved):  # a trace leaves its tracers where it wrote
            vars(owner).clear()
            vars(owner).update(attributes)
        new_params, new_buffers, opt.state, loss, hits = out
        for layer, p, b in zip(net.layers, new_params, new_buffers):
            layer.params, layer.buffers = p, b
        opt.end_step()
        return loss, hits

    def _zeros(self, params: list[dict]) -> dict:
        """The optimizer's fresh state for every parameter (made before the first step, so that
        the compiled function always takes the same structure)."""
        opt = self.net.optimizer
        return {
            f"{i}.{name}": opt._new_state(p) for i, layer in enumerate(params) for name, p in layer.items()
        }

    def _pure_take(self, params, buffers, state, constants, keys, x, targets, idx):
        """:meth:`_pure` on the samples ``idx`` of ``(x, targets)``."""
        xp = self.net.xp
        batch = xp.take(x, idx, axis=0), xp.take(targets, idx, axis=0)
        return self._pure(params, buffers, state, constants, keys, *batch)

    def _pure(self, params, buffers, state, constants, keys, xb, tb):
        """The step as a pure function of arrays (traced once per batch shape)."""
        net, opt = self.net, self.net.optimizer
        for layer, p, b in zip(net.layers, params, buffers):
            layer.params, layer.buffers = dict(p), dict(b)
        for i, key in zip(self.random_layers, keys):
            net.layers[i].random = net.backend.keyed_random(key)
        opt.state, opt.scratch = {name: dict(slots) for name, slots in state.items()}, {}
        for name, value in constants.items():
            setattr(opt, name, value)
        out, tape = net.forward_train(xb)
        value, ctx = self.loss_fn.forward(out, tb)
        for name, new in opt.apply(net.backward(tape, self.loss_fn.backward(ctx))).items():
            index, param = name.split(".", 1)
            net.layers[int(index)].params[param] = new
        new_params = [dict(layer.params) for layer in net.layers]
        new_buffers = [dict(layer.buffers) for layer in net.layers]
        return new_params, new_buffers, opt.state, value, net.count_correct(out, tb)
