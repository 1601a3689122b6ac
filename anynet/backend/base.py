"""The :class:`Backend` base class: one array library on one device.

Arrays may be immutable (JAX): every kernel returns the arrays it changes, and stored state is
written back by its owner; indexed updates go through array-api-extra's ``at`` (in place where
the library allows it, a new array where it does not).

The base class *is* the generic Array API implementation: every method is written against the
standard, so any compliant library runs through it. Subclasses (``numpy.py``, ``cupy.py``,
``torch.py``) override only what their library does faster or differently (a device context, an
on-device random generator, ``out=`` buffers), and ``tests/test_backend_kernels.py`` checks every
override against this reference. :meth:`Backend.reference` gives the reference for any backend.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
from typing import Any, ClassVar, Protocol

import numpy as np
from array_api_extra import at

__all__ = ["Array", "Backend", "BackendError", "HostRandom", "RandomSource", "Shape", "host_copy"]

Array = Any  # an array of the backend's library (the standard has no common type)
Shape = tuple[int, ...]


class BackendError(RuntimeError):
    """A backend was asked for that is unknown, not installed or has no usable device."""


class RandomSource(Protocol):
    """What ``Backend.random(seed)`` returns: a seeded generator on the backend's device."""

    @property
    def backend(self) -> Backend: ...

    def permutation(self, n: int) -> Array: ...

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype=None) -> Array: ...

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype=None) -> Array: ...


def host_copy(a: Any) -> np.ndarray:
    """An array of any library (or nested lists) as host NumPy data: the backend class that
    handles it (every subclass of :class:`Backend` loaded, test doubles included) brings it
    home; anything else goes through DLPack or ``numpy.asarray``."""
    if isinstance(a, np.ndarray):
        return a
    for cls in _backend_classes(Backend):
        if cls.library and cls.handles(a):
            return cls.array_to_host(a)
    if hasattr(a, "__dlpack__"):
        return Backend.array_to_host(a)
    return np.asarray(a)


def _backend_classes(root: type[Backend]) -> list[type[Backend]]:
    """The subclasses of ``root``, most derived first."""
    found: list[type[Backend]] = []
    for sub in root.__subclasses__():
        found += [*_backend_classes(sub), sub]
    return found


class HostRandom:
    """Random numbers drawn on the host with NumPy's PCG64, then moved to the backend's device.

    The Array API standard has no random numbers; this is the portable source.
    """

    def __init__(self, backend: Backend, seed: int | None):
        self.backend = backend
        self.generator = np.random.default_rng(seed)

    def permutation(self, n: int) -> Array:
        """A random permutation of ``range(n)`` as an int64 index array on the device."""
        return self.backend.asarray(self.generator.permutation(n).astype(np.int64))

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype=None) -> Array:
        host = self.generator.uniform(low, high, size=shape)
        return self.backend.asarray(host, dtype=self.backend.float_dtype(dtype))

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype=None) -> Array:
        host = self.generator.normal(mean, std, size=shape)
        return self.backend.asarray(host, dtype=self.backend.float_dtype(dtype))

    def get_state(self) -> dict:
        """The generator's position (JSON-able), for checkpoints."""
        return {"kind": "pcg64", "state": self.generator.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.generator.bit_generator.state = state["state"]


class Backend:
    """An Array API namespace ``xp`` on one ``device``, with a random source and hot kernels.

    Attributes:
        name: the library's name in backend specs (``"numpy"``, ``"array_api_strict"``, ...).
        xp: the Array API namespace (array-api-compat's wrapper where one is needed).
        device: the device object arrays are created on.
        module: the library's own module (``numpy``, ``cupy``, ``torch``, ...).
    """

    #: the name this class answers to in :func:`~anynet.backend.get_backend` (the generic class
    #: answers to the module name of whichever library it serves)
    library: ClassVar[str] = ""
    #: how to install the library, for error messages
    install_hint: ClassVar[str] = ""
    #: arrays live in host memory, where reading their values back costs no device sync
    on_host: ClassVar[bool] = False

    @classmethod
    def import_module(cls) -> Any:
        """The library's own module, imported by its name (an ImportError when it is missing)."""
        return importlib.import_module(cls.library)

    @classmethod
    def create(cls, device: str | None = None) -> Backend:
        """The backend on ``device`` (a spec's part after the colon; ``None``: the library's
        default), or a :class:`BackendError` saying why there is none. Each library's class
        implements it; :func:`~anynet.backend.get_backend` calls it."""
        raise BackendError(f"{cls.__name__} cannot be created by name")

    def __init__(self, xp: Any, device: Any, module: Any, name: str | None = None):
        self.xp, self.device, self.module = xp, device, module
        self.name = name or self.library or module.__name__
        self._context: Any = None  # the device context of the backend a reference was made from

    # ------------------------------------------------------------------ identity
    @property
    def device_label(self) -> str:
        """The device as written after the colon of a spec: its index among the namespace's
        devices (``__array_namespace_info__().devices()``)."""
        devices = list(self.xp.__array_namespace_info__().devices())
        return str(devices.index(self.device)) if self.device in devices else str(self.device)

    @property
    def spec(self) -> str:
        """A string that :func:`~anynet.backend.get_backend` turns back into this backend."""
        return f"{self.name}:{self.device_label}"

    @property
    def version(self) -> str:
        return str(getattr(self.module, "__version__", "?"))

    def describe_devices(self) -> list[str]:
        """One line per accelerator this backend can use (empty for host-only backends)."""
        return []

    @classmethod
    def handles(cls, a: Any) -> bool:
        """True when ``a`` is an array of this class's library (how ``backend_of`` finds a
        backend registered with ``register_backend``)."""
        return type(a).__module__.split(".")[0] == cls.library

    def activate(self) -> contextlib.AbstractContextManager:
        """A context in which this backend's device is the current one, for libraries that
        compute on a *current* device whatever ``device=`` says (CuPy). Entered by ``fit``,
        ``evaluate``, ``predict`` and uploads; a no-op for libraries without one."""
        return contextlib.nullcontext() if self._context is None else self._context()

    @property
    def accelerator(self) -> bool:
        """True when arrays live on a GPU (not host memory, not a CPU device of a library)."""
        return False

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` threads for the library's own CPU thread pool (BLAS pools are set
        with threadpoolctl by the caller)."""

    def synchronize(self) -> None:
        """Wait until the device has finished the work queued so far (no-op on the host)."""

    def reference(self) -> Backend:
        """The generic Array API implementation on the same namespace and device: what every
        override of this class must agree with. It keeps the device context (:meth:`activate`),
        which is where the device is, not a kernel."""
        ref = Backend(self.xp, self.device, self.module, name=self.name)
        ref._context = self.activate
        return ref

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and type(other) is type(self) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    # ------------------------------------------------------------------ dtypes and data
    @functools.cached_property
    def float_dtypes(self) -> tuple[str, ...]:
        """The real floating dtypes the device supports (``float32``, usually ``float64``)."""
        info = self.xp.__array_namespace_info__()
        return tuple(info.dtypes(device=self.device, kind="real floating"))

    def float_dtype(self, dtype=None):
        """The namespace's float dtype for ``"float32"`` (default), ``"float64"`` or a dtype."""
        if dtype is None:
            return self.xp.float32
        if isinstance(dtype, str):
            if dtype not in ("float32", "float64"):
                raise ValueError(f"unsupported float dtype {dtype!r}: use 'float32' or 'float64'")
            if dtype not in self.float_dtypes:
                raise BackendError(
                    f"{self.spec} has no {dtype} (it has {', '.join(self.float_dtypes)}); use dtype='float32'"
                )
            return getattr(self.xp, dtype)
        if isinstance(dtype, type | np.dtype) and np.dtype(dtype).kind == "f":
            return getattr(self.xp, np.dtype(dtype).name)
        return dtype

    def owns(self, a: Any) -> bool:
        """True when ``a`` is already an array of this backend's library."""
        namespace = getattr(a, "__array_namespace__", None)
        return namespace is not None and namespace() is self.module

    def asarray(self, a: Any, dtype=None) -> Array:
        """``a`` (host data or an array of any backend) as an array on this backend's device.

        ``dtype`` may be a namespace dtype or ``"float32"`` / ``"float64"``; ``None`` keeps the
        kind of ``a`` (host float64 is *not* narrowed: pass the dtype you want).
        """
        if isinstance(dtype, str):
            dtype = self.float_dtype(dtype)
        if not self.owns(a):
            a = self.from_host(host_copy(a))
        with self.activate():
            return self.make_array(a, dtype)

    def from_host(self, a: np.ndarray) -> Any:
        """Host data as this library can take it (PyTorch copies read-only memory)."""
        return a

    def make_array(self, a: Any, dtype) -> Array:
        """``xp.asarray`` on this backend's device."""
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    def to_host(self, a: Array) -> np.ndarray:
        """A host NumPy copy (or view) of an array of this backend."""
        return self.array_to_host(a)

    @staticmethod
    def array_to_host(a: Any) -> np.ndarray:
        """How an array of this class's library comes to the host (here: through DLPack)."""
        try:
            return np.from_dlpack(a)
        except (TypeError, RuntimeError, BufferError, AttributeError):
            return np.asarray(a)

    def zeros(self, shape: Shape, dtype=None) -> Array:
        with self.activate():
            return self.xp.zeros(shape, dtype=self.float_dtype(dtype), device=self.device)

    def random(self, seed: int | None = None) -> RandomSource:
        """A random-number source with ``permutation``, ``uniform`` and ``normal``."""
        return HostRandom(self, seed)

    # ------------------------------------------------------------------ compiled steps
    def jit(self, function: Any) -> Any:
        """``function`` (a pure function of arrays and nested lists/dicts of them) compiled by
        the library, or ``None`` where the library does not compile (all but JAX)."""
        return None

    def step_keys(self, seeds: list[int], step: int) -> Any:
        """Random keys for one compiled step: one per seed, derived from it and ``step`` (only
        for libraries that compile: see :meth:`jit`)."""
        raise BackendError(f"{self.spec} does not compile training steps")

    def keyed_random(self, key: Any) -> RandomSource:
        """A random source drawing from ``key`` (one of :meth:`step_keys`) inside a compiled
        step."""
        raise BackendError(f"{self.spec} does not compile training steps")

    # ------------------------------------------------------------------ hot kernels
    def scratch_like(self, param: Array) -> Array | None:
        """A work buffer for :meth:`adam_update` (the generic path needs none)."""
        return None

    def adam_update(
        self,
        param: Array,
        grad: Array,
        m: Array,
        v: Array,
        scratch: Array | None,
        beta1: float,
        beta2: float,
        step_size: float,
        eps: float,
    ) -> tuple[Array, Array, Array]:
        """One Adam step; returns the new ``param``, ``m`` and ``v``::

            m <- beta1 m + (1 - beta1) g
            v <- beta2 v + (1 - beta2) g^2
            param <- param - step_size * (m / (sqrt(v) + eps))

        ``step_size`` and ``eps`` already carry the bias corrections (see ``Adam.step``). A
        library that updates arrays in place returns the arrays it was given, updated; an
        immutable one (JAX: the augmented assignments below make new arrays) returns new ones,
        which the caller stores.
        """
        xp = self.xp
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        g2 = grad * grad
        g2 *= 1.0 - beta2
        v += g2
        d = xp.sqrt(v)
        d += eps
        d = m / d
        d *= step_size
        param -= d
        return param, m, v

    def flush_small(self, a: Array, threshold: float) -> Array:
        """``a`` with the entries ``|a| < threshold`` set to zero (keeps Adam's moments out of
        the float subnormal range; see ``anynet.optimizers.FLUSH_BELOW``); returns it (updated in
        place where the library can)."""
        xp = self.xp
        return at(a)[...].set(xp.where(xp.abs(a) < threshold, 0.0, a))

    # ------------------------------------------------------------------ convolution
    def batch_slices(self, n: int | None, per_sample: int, budget: int) -> list[slice] | None:
        """How to split a batch of ``n`` samples so that each part's work buffer holds at most
        ``budget`` values (``per_sample`` each); ``None``: in one piece (it fits, or the batch
        size is not known: a symbolic trace decides nothing from it)."""
        if not isinstance(n, int) or n * per_sample <= budget:
            return None
        step = max(1, budget // per_sample)
        return [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]

    def pad2d(self, x: Array, pad: int) -> Array:
        """``x`` (N, C, H, W) with ``pad`` zeros around its last two axes: zero columns, then zero
        rows, concatenated (the standard has no ``pad``; nothing depends on the batch size)."""
        if pad == 0:
            return x
        xp = self.xp
        side = xp.zeros_like(x[:, :, :, :1])
        x = xp.concat([side] * pad + [x] + [side] * pad, axis=3)
        rim = xp.zeros_like(x[:, :, :1, :])
        return xp.concat([rim] * pad + [x] + [rim] * pad, axis=2)

    def im2col(self, x: Array, kh: int, kw: int, stride: int) -> Array:
        """The receptive fields of a padded batch ``x`` (N, C, Hp, Wp) as columns
        (C*kh*kw, N*Ho*Wo): row ``c*kh*kw + i*kw + j``, column ``n*Ho*Wo + oy*Wo + ox`` holds
        input pixel ``(n, c, oy*stride + i, ox*stride + j)``. One ``take`` with an index array
        made once per shape, then one transpose: the convolution is then a single matmul."""
        _, c, hp, wp = x.shape  # the batch size is not used: it may be symbolic
        index = self._im2col_index(c, hp, wp, kh, kw, stride)
        cols = self.xp.take(self.xp.reshape(x, (-1, c * hp * wp)), index, axis=1)
        ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
        cols = self.xp.permute_dims(self.xp.reshape(cols, (-1, c * kh * kw, ho * wo)), (1, 0, 2))
        return self.xp.reshape(cols, (c * kh * kw, -1))

    def _im2col_index(self, c: int, hp: int, wp: int, kh: int, kw: int, stride: int) -> Array:
        key = (c, hp, wp, kh, kw, stride)
        cache = self.__dict__.setdefault("_im2col_indices", {})
        index = cache.get(key)
        if index is None:
            ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
            rows = np.arange(kh)[:, None, None, None] + stride * np.arange(ho)[None, None, :, None]
            cols = np.arange(kw)[None, :, None, None] + stride * np.arange(wo)[None, None, None, :]
            within = rows * wp + cols  # (kh, kw, ho, wo)
            flat = np.arange(c)[:, None, None, None, None] * (hp * wp) + within[None]
            index = cache[key] = self.asarray(flat.reshape(-1).astype(np.int64))
        return index

    def col2im(self, cols: Array, shape: Shape, kh: int, kw: int, stride: int) -> Array:
        """The adjoint of :meth:`im2col`: columns (C*kh*kw, N*Ho*Wo) summed back into an
        array of the padded input's ``shape`` (N, C, Hp, Wp), as a sum of ``kh*kw`` shifted,
        strided slices (the standard has no scatter-add)."""
        xp = self.xp
        n, c, hp, wp = shape
        ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
        parts = xp.reshape(cols, (c, kh, kw, n, ho, wo))
        out = xp.zeros((c, n, hp, wp), dtype=cols.dtype, device=self.device)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + stride * (ho - 1) + 1, stride)
                across = slice(j, j + stride * (wo - 1) + 1, stride)
                out = at(out)[:, :, rows, across].add(parts[:, i, j, :, :, :])
        return xp.permute_dims(out, (1, 0, 2, 3))

    def conv2d_forward(
        self, x: Array, w: Array, bias: Array | None, stride: int, pad: int, training: bool
    ) -> tuple[Array, Any]:
        """The convolution of ``x`` (N, C, H, W) with filters ``w`` (F, C, kh, kw), ``pad`` zeros
        around each image, at ``stride``; plus ``bias`` (F,) when given. One matmul of the
        filters with the columns of :meth:`im2col`::

            y = W2 @ cols                W2 = w reshaped (F, C*kh*kw)  ->  (F, N*Ho*Wo) -> NCHW

        Returns ``y`` (N, F, Ho, Wo) and the context :meth:`conv2d_backward` takes (``None``
        unless ``training``)."""
        xp = self.xp
        f, c, kh, kw = w.shape
        h, wd = x.shape[2], x.shape[3]
        ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
        # the padded shape as the caller knows it (a symbolic trace may not)
        padded = xp.reshape(self.pad2d(x, pad), (-1, c, h + 2 * pad, wd + 2 * pad))
        cols = self.im2col(padded, kh, kw, stride)
        y = xp.reshape(w, (f, -1)) @ cols  # (F, N*Ho*Wo)
        if bias is not None:
            y += xp.reshape(bias, (f, 1))
        y = xp.permute_dims(xp.reshape(y, (f, -1, ho, wo)), (1, 0, 2, 3))
        return y, ((cols, tuple(padded.shape), stride, pad) if training else None)

    def conv2d_backward(
        self, ctx: Any, grad: Array, w: Array, bias: bool, need_input_grad: bool
    ) -> tuple[Array | None, Array, Array | None]:
        """``dx`` (``None`` unless ``need_input_grad``), ``dw`` and ``db`` (``None`` without a
        ``bias``) of :meth:`conv2d_forward`, with ``g`` the output gradient laid out (F, N*Ho*Wo)::

            dW = g @ cols^T       db = sum of g over its columns       dx = unpad(col2im(W2^T @ g))
        """
        xp = self.xp
        cols, padded_shape, stride, pad = ctx
        f, _, kh, kw = w.shape
        g = xp.reshape(xp.permute_dims(grad, (1, 0, 2, 3)), (f, -1))  # (F, N*Ho*Wo)
        w2 = xp.reshape(w, (f, -1))
        dw = xp.reshape(g @ xp.matrix_transpose(cols), w.shape)
        db = xp.sum(g, axis=1) if bias else None
        if not need_input_grad:
            return None, dw, db
        dx = self.col2im(xp.matrix_transpose(w2) @ g, padded_shape, kh, kw, stride)
        h, wd = padded_shape[2] - 2 * pad, padded_shape[3] - 2 * pad
        return (dx[:, :, pad : pad + h, pad : pad + wd] if pad else dx), dw, db

    # ------------------------------------------------------------------ activations
    def relu_forward(self, x: Array, training: bool) -> tuple[Array, Any]:
        """``max(x, 0)`` computed as ``x * (x > 0)``: the 0/1 array (of ``x``'s dtype) is also the
        derivative, the context :meth:`relu_backward` takes (``None`` unless ``training``)."""
        mask = self.xp.astype(x > 0.0, x.dtype)
        return x * mask, (mask if training else None)

    def relu_backward(self, ctx: Any, grad: Array) -> Array:
        """``grad`` times the saved 0/1 derivative."""
        return grad * ctx

    # ------------------------------------------------------------------ normalisation and pooling
    @staticmethod
    def _per_channel_shape(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The axes batch statistics are taken over (all but the channel axis 1), and the shape
        per-channel arrays broadcast as, for (N, F) and (N, C, H, W) inputs."""
        if x.ndim == 2:
            return (0,), (1, x.shape[1])
        return (0, 2, 3), (1, x.shape[1], 1, 1)

    def batch_norm_train(self, x: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, ...]:
        """Batch normalisation with the batch's own statistics over every axis but 1::

            xhat = (x - mean) / sqrt(var + eps)        y = gamma * xhat + beta

        Returns ``y``, the per-channel ``mean`` and (biased) ``var`` as (C,) arrays, and the
        context :meth:`batch_norm_backward` takes.
        """
        xp = self.xp
        axes, shape = self._per_channel_shape(x)
        mean = xp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + eps)
        xhat = centred * inv_std
        y = xhat * xp.reshape(gamma, shape) + xp.reshape(beta, shape)
        return y, xp.reshape(mean, (-1,)), xp.reshape(var, (-1,)), (xhat, inv_std)

    def batch_norm_backward(self, ctx: Any, grad: Array, gamma: Array) -> tuple[Array, Array, Array]:
        """``dx``, ``dgamma`` and ``dbeta`` of :meth:`batch_norm_train`, over ``m`` values per
        channel::

            dgamma = sum(g * xhat)      dbeta = sum(g)
            dx     = gamma / sqrt(var + eps) * (g - dbeta / m - xhat * dgamma / m)
        """
        xp = self.xp
        xhat, inv_std = ctx
        axes, shape = self._per_channel_shape(grad)
        m = math.prod(grad.shape) // grad.shape[1]
        dbeta = xp.sum(grad, axis=axes, keepdims=True)
        dgamma = xp.sum(grad * xhat, axis=axes, keepdims=True)
        scale = xp.reshape(gamma, shape) * inv_std
        dx = scale * (grad - dbeta * (1.0 / m) - xhat * (dgamma * (1.0 / m)))
        return dx, xp.reshape(dgamma, (-1,)), xp.reshape(dbeta, (-1,))

    def batch_norm_inference(
        self, x: Array, gamma: Array, beta: Array, mean: Array, var: Array, eps: float
    ) -> Array:
        """``gamma * (x - mean) / sqrt(var + eps) + beta`` with given (running) statistics."""
        xp = self.xp
        _, shape = self._per_channel_shape(x)
        scale = xp.reshape(gamma, shape) / xp.sqrt(xp.reshape(var, shape) + eps)
        return (x - xp.reshape(mean, shape)) * scale + xp.reshape(beta, shape)

    def pool_windows(self, x: Array, p: int) -> Array:
        """(N, C, Ho, p, Wo, p): the ``p`` x ``p`` windows of ``x`` (N, C, H, W) as a reshape,
        rows and columns that do not fill a window dropped."""
        _, c, h, w = x.shape
        ho, wo = h // p, w // p
        if (ho * p, wo * p) != (h, w):
            x = x[:, :, : ho * p, : wo * p]
        return self.xp.reshape(x, (-1, c, ho, p, wo, p))

    def uncrop(self, g: Array, shape: Shape) -> Array:
        """``g``, the gradient of the top-left part of an input of ``shape`` that
        :meth:`pool_windows` kept, in an array of that shape (zeros where it was cropped)."""
        if tuple(g.shape) == tuple(shape):
            return g
        out = self.xp.zeros(shape, dtype=g.dtype, device=self.device)
        return at(out)[:, :, : g.shape[2], : g.shape[3]].set(g)

    def max_pool_forward(self, x: Array, p: int, training: bool) -> tuple[Array, Any]:
        """The maximum of each ``p`` x ``p`` window of ``x`` (stride ``p``), and the context
        :meth:`max_pool_backward` takes (``None`` unless ``training``).

        The maximum of the ``p*p`` strided slices, one elementwise maximum at a time (NumPy's
        max over the two inner window axes is ~15x slower).
        """
        win = self.pool_windows(x, p)
        y = win[:, :, :, 0, :, 0]
        for i, j in ((i, j) for i in range(p) for j in range(p) if i or j):
            y = self.xp.maximum(y, win[:, :, :, i, :, j])
        return y, ((win, y, tuple(x.shape)) if training else None)

    def max_pool_backward(self, ctx: Any, grad: Array) -> Array:
        """Each window's gradient routed to its first maximum in row-major order (ties are common
        after a ReLU; routing to every tied input would multiply the gradient), found by
        comparing the window's ``p*p`` positions with the maximum one after another."""
        xp = self.xp
        win, y, shape = ctx
        n, c, ho, p, wo, _ = win.shape
        out = xp.zeros(win.shape, dtype=grad.dtype, device=self.device)
        taken = xp.zeros(y.shape, dtype=xp.bool, device=self.device)
        for i in range(p):
            for j in range(p):
                first = xp.logical_and(win[:, :, :, i, :, j] == y, xp.logical_not(taken))
                out = at(out)[:, :, :, i, :, j].set(xp.astype(first, grad.dtype) * grad)
                taken = xp.logical_or(taken, first)
        return self.uncrop(xp.reshape(out, (n, c, ho * p, wo * p)), shape)
