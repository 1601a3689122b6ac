"""``cupy.ElementwiseKernel`` of the double: the kernel's CUDA C body translated, not compiled.

CuPy compiles ``operation`` with NVRTC and runs it once per element of the broadcast arguments,
inputs as ``const`` references, outputs as references written in place. The double parses the
same text and evaluates it over whole NumPy arrays, with C's types: each operation in the type C
gives it (``float * double`` is ``double``, ``int / int`` truncates, ``1.0`` is a ``double`` and
``1.0f`` a ``float``), rounded once, as NVRTC compiles it with ``--fmad=false``.

The C it reads (anything else is a :class:`NotImplementedError`, never a guess):

- statements ``TYPE name = expr;`` (``const`` allowed) and ``name = expr;``, ``+=``, ``-=``,
  ``*=``, ``/=``; ``TYPE`` is ``float``, ``double``, ``int``, ``bool`` or a parameter's type
  letter (``T``);
- ``+ - * /``, unary ``-``/``+``, parentheses, casts ``(T)x`` and ``T(x)``, number literals,
  and the functions ``sqrt``, ``sqrtf``, ``fabs``, ``fabsf``, ``max``, ``min``;
- parameters ``TYPE name`` with a NumPy type name or a one-letter placeholder (no ``raw``).

What it refuses, as CuPy does: NumPy arrays (``Unsupported type``), arrays of another device
(ValueError), mismatched types (``Type is mismatched``) and output shapes, assignment to an input
or an undeclared name (:class:`CompileException`). What it cannot model, so refuses: a floating
multiply and add in one kernel without ``--fmad=false`` (NVRTC may fuse them into one FMA with
one rounding), fast-math options, inputs sharing memory with outputs (CUDA references see each
other's writes; whole-array evaluation does not). One launch is one operation on the current
device (none for an empty loop, as in CuPy).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from . import cuda
from ._core import _is_scalar, _peer_check, _unsupported, log, ndarray
from .cuda import CompileException

__all__ = ["CompileException", "ElementwiseKernel"]


#: C's types the translator knows (a placeholder letter is bound per call)
C_TYPES: dict[str, np.dtype] = {
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "int": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}
#: types arithmetic can be done in after C's integral promotion, lowest first
_RANKS = [np.dtype(t) for t in (np.int32, np.int64, np.float32, np.float64)]
_FUNCTIONS = {"sqrt": 1, "sqrtf": 1, "fabs": 1, "fabsf": 1, "max": 2, "min": 2}
#: max/min on integers, on floats (a NaN loses: fmaxf's rule)
_EXTREMA = {"max": (np.maximum, np.fmax), "min": (np.minimum, np.fmin)}
_UNMODELLED = ("-use_fast_math", "--use_fast_math", "--ftz=true", "--prec-div=false", "--prec-sqrt=false")
_TOKEN = re.compile(
    r"\s+|(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[fF]?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>[-+*/]=|[-+*/=(),;])|(?P<other>==|!=|<=|>=|&&|\|\||[<>?:%!\[\]{}&|^~.])"
)


def _tokens(source: str) -> list[str]:
    """The tokens of ``source`` (comments dropped); anything outside the subset is refused."""
    source = re.sub(r"//[^\n]*|/\*.*?\*/", " ", source, flags=re.S)
    out, pos = [], 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None or match.lastgroup == "other":
            raise NotImplementedError(
                f"the CuPy double's kernel translator does not read {source[pos : pos + 20]!r}"
            )
        if match.lastgroup is not None:
            out.append(match.group())
        pos = match.end()
    return out


def _literal(text: str) -> tuple[Any, np.dtype]:
    """A C number literal: ``1`` an int, ``1.0``/``1e-8`` a double, ``1.0f`` a float."""
    floating = any(c in text for c in ".eE")
    if text[-1] in "fF":
        if not floating:
            raise CompileException(f"invalid literal {text!r}")
        return np.float32(text[:-1]), C_TYPES["float"]
    if floating:
        return np.float64(text), C_TYPES["double"]
    return np.int32(int(text)), C_TYPES["int"]


# ---------------------------------------------------------------------- parsing


class _Parser:
    """Recursive descent over one statement's tokens; ``types``: the type names in scope."""

    def __init__(self, tokens: list[str], types: set[str]):
        self.tokens, self.pos, self.types = tokens, 0, types

    def peek(self, ahead: int = 0) -> str | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise CompileException(f"expected {expected or 'more'} in {' '.join(self.tokens)!r}")
        self.pos += 1
        return token

    def statement(self) -> tuple:
        """``("decl", type, name, expr)`` or ``("assign", name, op, expr)``."""
        if self.peek() == "const":
            self.take()
        first = self.take()
        if first in self.types:
            name = self.name()
            self.take("=")
            node: tuple = ("decl", first, name, self.expr())
        elif re.fullmatch(r"[A-Za-z_]\w*", first) and self.peek() in ("=", "+=", "-=", "*=", "/="):
            node = ("assign", first, self.take(), self.expr())
        else:
            raise NotImplementedError(f"the CuPy double's kernel translator does not read {first!r} here")
        if self.peek() is not None:
            raise CompileException(f"unexpected {self.peek()!r} in {' '.join(self.tokens)!r}")
        return node

    def name(self) -> str:
        token = self.take()
        if not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise CompileException(f"expected a name, got {token!r}")
        return token

    def expr(self) -> tuple:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = ("bin", self.take(), node, self.term())
        return node

    def term(self) -> tuple:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = ("bin", self.take(), node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek() in ("-", "+"):
            return ("neg" if self.take() == "-" else "pos", self.unary())
        if self.peek() == "(" and self.peek(1) in self.types and self.peek(2) == ")":
            self.pos += 1
            kind = self.take()
            self.take(")")
            return ("cast", kind, self.unary())
        return self.primary()

    def primary(self) -> tuple:
        token = self.take()
        if token == "(":
            node = self.expr()
            self.take(")")
            return node
        if re.fullmatch(r"[\d.]\S*", token):
            return ("num", token)
        if not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise CompileException(f"unexpected {token!r}")
        if self.peek() != "(":
            return ("var", token)
        self.take("(")
        args = [self.expr()]
        while self.peek() == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        if token in self.types:
            if len(args) != 1:
                raise CompileException(f"a cast {token}(...) takes one value")
            return ("cast", token, args[0])
        return ("call", token, args)


def parse(operation: str, types: set[str]) -> list[tuple]:
    """The statements of ``operation``."""
    statements, current = [], []
    for token in [*_tokens(operation), ";"]:
        if token != ";":
            current.append(token)
        elif current:
            statements.append(_Parser(current, types).statement())
            current = []
    return statements


# ---------------------------------------------------------------------- evaluation


def _arith(dtype: np.dtype) -> np.dtype:
    """The type C computes in for an operand of ``dtype`` (bool and short ints promote to int)."""
    if dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize < 4):
        return C_TYPES["int"]
    if dtype not in _RANKS:
        raise NotImplementedError(f"the CuPy double's kernel translator does no arithmetic in {dtype}")
    return dtype


def _common(a: np.dtype, b: np.dtype) -> np.dtype:
    """C's usual arithmetic conversions (on the types the translator knows)."""
    return max(_arith(a), _arith(b), key=_RANKS.index)


def _as(value: Any, dtype: np.dtype) -> np.ndarray:
    return np.asarray(value).astype(dtype, copy=False)


class Value(NamedTuple):
    """A value over the whole loop, its C type, and whether it is a floating product NVRTC
    could still fuse into an add (straight from a ``*``, or a variable holding one)."""

    data: np.ndarray
    dtype: np.dtype
    product: bool = False


class _Evaluation:
    """One launch: every variable's value, which variables are inputs (``const``) and which
    were assigned, and whether a multiply feeds an add (``contractible``)."""

    def __init__(self, types: dict[str, np.dtype], variables: dict[str, Value], const: set[str]):
        self.types, self.vars, self.const = types, variables, const
        self.assigned: set[str] = set()
        self.contractible = False

    def run(self, statements: list[tuple]) -> None:
        for statement in statements:
            if statement[0] == "decl":
                _, kind, name, expr = statement
                if name in self.vars:
                    raise CompileException(f'"{name}" has already been declared')
                self.vars[name] = self.convert(self.eval(expr), self.types[kind])
                continue
            _, name, op, expr = statement
            if name not in self.vars:
                raise CompileException(f'identifier "{name}" is undefined')
            if name in self.const:
                raise CompileException(f'"{name}" is an input (a const reference): it cannot be assigned')
            value = self.eval(expr if op == "=" else ("bin", op[0], ("var", name), expr))
            self.vars[name] = self.convert(value, self.vars[name].dtype)
            self.assigned.add(name)

    @staticmethod
    def convert(value: Value, dtype: np.dtype) -> Value:
        """``value`` as ``dtype`` (C's conversion; a product stays one only unconverted)."""
        return Value(_as(value.data, dtype), dtype, value.product and value.dtype == dtype)

    def eval(self, node: tuple) -> Value:
        kind = node[0]
        if kind == "num":
            return Value(*_literal(node[1]))
        if kind == "var":
            if node[1] not in self.vars:
                raise CompileException(f'identifier "{node[1]}" is undefined')
            return self.vars[node[1]]
        if kind in ("neg", "pos"):
            value = self.eval(node[1])
            value = self.convert(value, _arith(value.dtype))
            return value._replace(data=np.negative(value.data)) if kind == "neg" else value
        if kind == "cast":
            return self.convert(self.eval(node[2]), self.types[node[1]])
        if kind == "bin":
            return self.binary(node[1], self.eval(node[2]), self.eval(node[3]))
        return self.call(node[1], [self.eval(a) for a in node[2]])

    def binary(self, op: str, left: Value, right: Value) -> Value:
        """``left op right`` in their common type, one rounding (``int / int`` truncates)."""
        dtype = _common(left.dtype, right.dtype)
        a, b = self.convert(left, dtype), self.convert(right, dtype)
        if op in "+-" and (a.product or b.product):
            self.contractible = True
        with np.errstate(all="ignore"):
            if op == "/" and dtype.kind != "f":
                if np.any(b.data == 0):
                    raise NotImplementedError("integer division by zero is undefined in C")
                quotient = np.abs(a.data) // np.abs(b.data)
                data = np.where((a.data < 0) != (b.data < 0), -quotient, quotient)
            else:
                data = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[op](a.data, b.data)
        return Value(np.asarray(data, dtype=dtype), dtype, op == "*" and dtype.kind == "f")

    def call(self, name: str, args: list[Value]) -> Value:
        """``sqrt``/``fabs`` (the overload for the argument's type; ``...f``: float) and
        ``max``/``min`` (in the common type; for floats, a NaN loses, as fmaxf's)."""
        if name not in _FUNCTIONS:
            raise NotImplementedError(f"the CuPy double's kernel translator has no {name}()")
        if len(args) != _FUNCTIONS[name]:
            raise CompileException(f"{name}() takes {_FUNCTIONS[name]} argument(s), not {len(args)}")
        if name in ("max", "min"):
            dtype = _common(args[0].dtype, args[1].dtype)
            pick = _EXTREMA[name][dtype.kind == "f"]
            return Value(np.asarray(pick(_as(args[0].data, dtype), _as(args[1].data, dtype))), dtype)
        dtype = args[0].dtype
        if name.endswith("f"):
            dtype = C_TYPES["float"]
        elif dtype.kind != "f":
            dtype = C_TYPES["double"]
        with np.errstate(invalid="ignore"):
            return Value(
                np.asarray((np.sqrt if name.startswith("sqrt") else np.abs)(_as(args[0].data, dtype))), dtype
            )


# ---------------------------------------------------------------------- the kernel

Param = tuple[str, "np.dtype | None", str]  # type word, its dtype (None: a placeholder), name


def _params(text: str) -> tuple[Param, ...]:
    """CuPy's parameter list: ``"T x, float32 y"``."""
    out = []
    for part in text.split(",") if text.strip() else []:
        words = part.split()
        if len(words) < 2:
            raise Exception(f"Syntax error: {part}")
        if len(words) > 2:
            if words[0] == "raw":
                raise NotImplementedError("the CuPy double does not emulate raw parameters")
            raise Exception(f'Unknown keyword "{words[0]}"')
        kind, name = words
        out.append((kind, None if len(kind) == 1 else np.dtype(kind), name))
    return tuple(out)


class ElementwiseKernel:
    """``cupy.ElementwiseKernel``, its ``operation`` translated (see the module's docstring)."""

    def __init__(
        self,
        in_params: str,
        out_params: str,
        operation: str,
        name: str = "kernel",
        reduce_dims: bool = True,
        preamble: str = "",
        no_return: bool = False,
        return_tuple: bool = False,
        **kwargs: Any,
    ):
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f'Invalid kernel name: "{name}"')
        self.in_params, self.out_params = _params(in_params), _params(out_params)
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs = self.nin + self.nout
        if "i" in [p[2] for p in self.in_params + self.out_params]:
            raise ValueError("Can not use 'i' as a parameter name")
        self.operation, self.name, self.__name__ = operation, name, name
        self.reduce_dims, self.preamble = reduce_dims, preamble
        self.no_return, self.return_tuple = no_return, return_tuple
        self.options = tuple(kwargs.pop("options", ()))
        if set(kwargs) - {"loop_prep", "after_loop"}:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")
        if preamble or any(kwargs.values()):
            raise NotImplementedError(
                "the CuPy double translates the operation only (no preamble, loop_prep, after_loop)"
            )
        self._statements: list[tuple] | None = None  # parsed at the first call (CuPy compiles then)

    def __call__(self, *args: Any, size: int = -1, stream: Any = None, block_size: int = 128) -> Any:
        """Run on the current device over the broadcast arguments; outputs (given or made
        there) are written in place and returned."""
        if block_size <= 0:
            raise ValueError("block_size must be greater than zero")
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. It must be either {self.nin} or "
                f"{self.nargs} (with outputs), but given {len(args)}."
            )
        dev = cuda.get_device_id()
        for a in args:
            if isinstance(a, ndarray):
                _peer_check(a, dev)
            elif not _is_scalar(a):
                raise _unsupported(a)
        arrays = [a for a in args if isinstance(a, ndarray)]
        if size != -1 and arrays:
            raise ValueError("Specified 'size' can be used only if all of the ndarray are 'raw'.")
        if not arrays:
            raise ValueError("Loop size is undecided.")
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        ins, outs = list(args[: self.nin]), list(args[self.nin :])
        types = self._types(ins, outs)
        outs = self._outputs(outs, types, shape, dev)
        if 0 not in shape:
            self._launch(ins, outs, types, shape)
            log.kernel(dev)
        if self.no_return:
            return None
        return outs[0] if self.nout == 1 and not self.return_tuple else tuple(outs)

    def _types(self, ins: list, outs: list) -> dict[str, np.dtype]:
        """The placeholders bound by the arrays' dtypes, outputs first (as CuPy decides them)."""
        bound: dict[str, np.dtype] = {}
        pairs = list(zip(self.out_params, outs))
        pairs += [(p, a) for p, a in zip(self.in_params, ins) if isinstance(a, ndarray)]
        for (kind, dtype, name), a in pairs:
            if not isinstance(a, ndarray):
                raise TypeError("Output arguments must be cupy.ndarray")
            want = dtype if dtype is not None else bound.setdefault(kind, a.dtype)
            if a.dtype != want:
                extra = "" if dtype is not None else f" {kind}"
                raise TypeError(f"Type is mismatched. {name} {a.dtype} {want}{extra}")
        for kind, dtype, name in self.in_params + self.out_params:
            if dtype is None and kind not in bound:
                raise TypeError(f"the type {kind} of {name} is undecided: no array argument has it")
        return {**C_TYPES, **bound}

    def _outputs(self, outs: list, types: dict, shape: tuple, dev: int) -> list:
        if not outs:
            dtypes = [dtype if dtype is not None else types[kind] for kind, dtype, _ in self.out_params]
            return [ndarray._of(np.empty(shape, dtype=d), dev) for d in dtypes]
        if any(a.shape != shape for a in outs):
            raise ValueError("Out shape is mismatched")
        return outs

    def _refuse_unmodelled(self, args: list, outs: list) -> None:
        """Options the double does not model, and outputs sharing memory with other arguments."""
        for option in self.options:
            if option.startswith(_UNMODELLED):
                raise NotImplementedError(f"the CuPy double does not model NVRTC's {option}")
        for j, out in enumerate(outs):
            others = [a for k, a in enumerate(args) if k != self.nin + j and isinstance(a, ndarray)]
            if any(np.may_share_memory(out._a, a._a) for a in others):
                raise NotImplementedError(
                    f"{self.out_params[j][2]} shares memory with another argument: the CuPy double "
                    "evaluates whole arrays, not CUDA references"
                )

    def _launch(self, ins: list, outs: list, types: dict, shape: tuple) -> None:
        """Evaluate the operation over the loop; write the assigned outputs in place."""
        self._refuse_unmodelled([*ins, *outs], outs)
        if self._statements is None:
            self._statements = parse(self.operation, set(types))
        variables: dict[str, Value] = {}
        for (kind, dtype, name), a in zip(self.in_params, ins):
            t = dtype if dtype is not None else types[kind]
            value = np.broadcast_to(a._a, shape) if isinstance(a, ndarray) else np.asarray(t.type(a))
            variables[name] = Value(value, t)
        for (_, _, name), a in zip(self.out_params, outs):
            variables[name] = Value(a._a.copy(), a.dtype)
        run = _Evaluation(types, variables, {p[2] for p in self.in_params})
        run.run(self._statements)
        if run.contractible and not any(o.lstrip("-") == "fmad=false" for o in self.options):
            raise NotImplementedError(
                "a float product feeds an add: NVRTC may fuse them into one FMA (one rounding), "
                "which the CuPy double does not model; pass options=('--fmad=false',)"
            )
        for (_, _, name), a in zip(self.out_params, outs):
            if name in run.assigned:
                np.copyto(a._a, np.broadcast_to(run.vars[name].data, shape))
