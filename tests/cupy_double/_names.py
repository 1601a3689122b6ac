"""The names the double serves, taken from CuPy 14's top-level namespace (those NumPy also has),
with the kind of operation each one is (see :func:`._core.call`)."""

#: borrowed from NumPy as they are, in CuPy too: constants, scalar types, dtype helpers
NUMPY_OBJECTS = """
e euler_gamma inf nan newaxis pi
bool_ byte ubyte short ushort intc uintc int_ uint longlong ulonglong intp uintp
int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 half single double
complex64 complex128 csingle cdouble generic number integer signedinteger unsignedinteger
inexact floating complexfloating dtype finfo iinfo ndindex index_exp s_
"""

UFUNCS = """
abs absolute acos acosh add arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh
atan atan2 atanh bitwise_and bitwise_count bitwise_invert bitwise_left_shift bitwise_not
bitwise_or bitwise_right_shift bitwise_xor cbrt ceil conj conjugate copysign cos cosh deg2rad
degrees divide divmod equal exp exp2 expm1 fabs float_power floor floor_divide fmax fmin fmod
frexp gcd greater greater_equal heaviside hypot invert isfinite isinf isnan lcm ldexp left_shift
less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
logical_xor matmul maximum minimum mod modf multiply negative nextafter not_equal positive pow
power rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh sqrt square
subtract tan tanh true_divide trunc
"""

FUNCTIONS = {
    # host data legitimately: uploads (an array of another device is copied over)
    "host": "array asarray asanyarray frombuffer fromfunction fromiter fromstring",
    # only the shape and dtype of the input are read
    "like": "empty_like zeros_like ones_like full_like",
    # views when NumPy gives views (no kernel), else kernels
    "view": """astype atleast_1d atleast_2d atleast_3d broadcast_arrays broadcast_to diagonal
        dsplit expand_dims flip fliplr flipud hsplit array_split split vsplit imag real
        matrix_transpose moveaxis permute_dims ravel reshape rollaxis rot90 squeeze swapaxes
        transpose""",
    # the output's size is read back from the device (CuPy syncs), or values are printed
    "sync": """argwhere bincount compress extract flatnonzero nonzero trim_zeros unique
        unique_all unique_counts unique_inverse unique_values intersect1d setdiff1d setxor1d
        union1d histogram histogram2d histogramdd array2string array_repr array_str place""",
    # indices may be host arrays (uploaded)
    "take": "take put",
    # nothing on a device
    "meta": """base_repr binary_repr can_cast common_type format_float_positional
        format_float_scientific get_printoptions isdtype iscomplexobj isfortran isrealobj
        isscalar issubdtype iterable may_share_memory min_scalar_type mintypecode ndim
        printoptions promote_types result_type set_printoptions shape shares_memory size
        typename broadcast_shapes""",
    # kernels on the current device
    "compute": """all allclose amax amin angle any append arange argmax argmin argpartition
        argsort around array_equal array_equiv ascontiguousarray asfortranarray average bartlett
        blackman choose clip column_stack concat concatenate convolve copy copyto corrcoef
        correlate count_nonzero cov cross cumprod cumsum cumulative_prod cumulative_sum delete
        diag diag_indices diag_indices_from diagflat diff digitize dot dstack ediff1d einsum
        empty eye fill_diagonal fix full gradient hamming hanning hstack i0 identity indices
        inner interp isclose iscomplex isin isneginf isposinf isreal ix_ kaiser kron lexsort
        linspace logspace mask_indices max mean median meshgrid min nan_to_num nanargmax
        nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin nanprod nanstd nansum
        nanvar ones outer packbits pad partition percentile prod ptp put_along_axis putmask
        quantile ravel_multi_index repeat resize roll round searchsorted select sinc sort
        sort_complex stack std sum take_along_axis tensordot tile trace trapezoid tri tril
        tril_indices tril_indices_from triu triu_indices triu_indices_from unpackbits
        unravel_index unwrap vander var vdot vstack zeros""",
}

LINALG = """cholesky cond det eig eigh eigvals eigvalsh inv lstsq matrix_power matrix_rank
    multi_dot norm pinv qr slogdet solve svd tensorinv tensorsolve"""

FFT = """fft ifft fft2 ifft2 fftn ifftn rfft irfft rfft2 irfft2 rfftn irfftn hfft ihfft fftfreq
    rfftfreq fftshift ifftshift"""
