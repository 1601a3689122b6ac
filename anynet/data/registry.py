"""The dataset registry: names, files, download URLs, checksums and class tables.

Every dataset anynet knows is described here by a :class:`DatasetInfo`, so that the class
names ("Q" for label 26 of EMNIST balanced) are available without any data file.

Names: ``mnist``, ``emnist-balanced``, ``emnist-byclass``, ``emnist-bymerge``,
``emnist-digits``, ``emnist-letters``, ``emnist-mnist`` and ``emnist-standin`` (the offline
47-class stand-in for EMNIST balanced, carved from the bymerge test split; see
:mod:`anynet.data.splits`).

Checksums: MNIST sha256 values were computed from the canonical files (their MD5s match the
published ones). EMNIST sizes and sha256 values are those of the canonical NIST gz files, as
recorded by the Git LFS pointers of the ``aurelienduarte/emnist`` mirror (commit
``55838475bfb4``) and cross-checked against an independent hash list; the bymerge train
sizes are not known (``None``), so only their sha256 is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DATASETS",
    "EMNIST_ARCHIVE_URL",
    "EMNIST_URL",
    "FRAMING",
    "MNIST_URL",
    "DatasetInfo",
    "FileInfo",
    "class_names",
    "dataset_info",
    "dataset_names",
    "framing_style",
]

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# Per-file mirror of the canonical NIST gz files (Git LFS media of a GitHub mirror, pinned).
EMNIST_URL = (
    "https://media.githubusercontent.com/media/aurelienduarte/emnist/"
    "55838475bfb43e14b3b371aaa7b77b66413ed62e/gzip/"
)
# The official NIST distribution: one 535 MB zip holding every gz file of every split.
EMNIST_ARCHIVE_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"

#: How the characters of a dataset family were framed in the 28x28 field (anynet.imageprep
#: frames users' images the same way; its STYLES holds the box sizes).
FRAMING = {
    "mnist": "MNIST style: longer side scaled to 20 px, centre of mass at the middle of 28x28",
    "emnist": "EMNIST style: square frame padded by 2 px and scaled to 28x28 (longer side ~24 px, box centred)",
}

# ---------------------------------------------------------------------------- class tables

DIGITS = tuple("0123456789")
UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LOWER = tuple("abcdefghijklmnopqrstuvwxyz")
# balanced and bymerge: the 15 lower-case letters that look like their capitals are merged
# (c i j k l m o p s u v w x y z), leaving these 11 lower-case classes
MERGED_LOWER = tuple("abdefghnqrt")
EMNIST47 = DIGITS + UPPER + MERGED_LOWER  # = emnist-{balanced,bymerge}-mapping.txt
EMNIST62 = DIGITS + UPPER + LOWER  # = emnist-byclass-mapping.txt
LETTERS = UPPER  # emnist-letters: labels 1..26 in the files, each class is upper+lower case


@dataclass(frozen=True)
class FileInfo:
    """One file to fetch: its name, where it comes from and how to check it."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`anynet.data.load` needs to know about a dataset.

    Attributes:
        name: registry name.
        folder: the sub-folder of a data dir / cache that holds the files.
        files: role (``train_images``, ``train_labels``, ``test_images``, ``test_labels``)
            -> :class:`FileInfo`. The stand-in only has ``images`` and ``labels``.
        classes: class names, index = label (after ``label_offset`` is removed).
        label_offset: first label in the files (1 for EMNIST letters, else 0).
        transposed: images are stored transposed in the files (all EMNIST IDX files).
        n_train, n_test: expected split sizes.
        description: one line for humans.
        style: how its characters are framed: ``"mnist"`` or ``"emnist"`` (see :data:`FRAMING`).
    """

    name: str
    folder: str
    files: dict = field(repr=False)
    classes: tuple
    label_offset: int = 0
    transposed: bool = False
    n_train: int | None = None
    n_test: int | None = None
    description: str = ""
    style: str = "mnist"

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _mnist() -> DatasetInfo:
    spec = {
        "train_images": (
            "train-images-idx3-ubyte.gz",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train_labels": (
            "train-labels-idx1-ubyte.gz",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "test_images": (
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "test_labels": (
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    }
    files = {role: FileInfo(fn, MNIST_URL + fn, sha, size) for role, (fn, size, sha) in spec.items()}
    return DatasetInfo(
        "mnist",
        "mnist",
        files,
        DIGITS,
        n_train=60000,
        n_test=10000,
        description="MNIST handwritten digits (LeCun et al. 1998), 10 classes",
    )


# split -> {role: (size or None, sha256)}; roles in the order train/test images/labels
_EMNIST_FILES = {
    "balanced": (
        (28207740, "74295e75e4e9fa2c102147460ee7eb763653d5132d883a84fb88932bfb8d2db4"),
        (80618, "b46d41e5156a0a8aaaa4d18979fdd1588850fa8571018acffd5d93b325a7d6ed"),
        (4714707, "117fc12b015e37ea98bfb2cbba3f77c3782c056cdbd219b87abfc8661d7135db"),
        (13504, "a67cac948379b67270b9a4d0a01c8ec661598accf2f2b1964340b7c83cb175cd"),
    ),
    "byclass": (
        (173367313, "9e21987f03a6eb8b870187e785883ddad96947299587908f1a7ec2ca0f4be5f0"),
        (491603, "f7ef403d48dc18a89dae0d83d11ee69cecb6e1c12c3a961d03712e495c02a8fa"),
        (28908322, "5ec835bd5d5b1a66378a132e727fef20fe994b3cc666899befcca5ac766f50cd"),
        (81839, "501e305eeeacb093b162592d80e8a2632040872360fa6d85cfcb2200d91ca92a"),
    ),
    "bymerge": (
        (None, "39bf8c68037dad40db35348895f7e4e056e8c0a005ab78869c9fbc2c96e947be"),
        (None, "2c47293b9e62d6abf6ad05fbf67e40baa32adfd380b8d7b44dcc35534b64e1f1"),
        (28905295, "5e5815ec1b522089134435f7c55e75a00960b58414793593ffff23efc0821683"),
        (79351, "8bda1516255683ba9071e141947ca0c91a911176065cdd6259b0b4d8dc5b5f35"),
    ),
    "digits": (
        (59515779, "f7c95004d14d81af89522e67d8f0c781dfb3bd544181c81bfe1eb6b41c35b726"),
        (113859, "6638a6ff5fe2eefd9cca2471995b46c82986b8e4b2a70d2f5ce8e05d7edb319e"),
        (9908519, "20ebe43509264f7639d37c835a3f0b009e90b29e00a099a03101abe1644a3f63"),
        (19960, "bad1834c45d5988e270b99d43b13edc3fd898f658ffbc2caf2846ef27f7b05b0"),
    ),
    "letters": (
        (30804864, "6288f418a917e007bf5fddb823a2dc7a5c6a35031401b93292a539cb12bd881f"),
        (79283, "9759af91ea6bccdf07a6040fd085861f2ec88e37f7c3f5760f6feb57106fbe5c"),
        (5039157, "50f0e93d75b99b463e9760b8345866f22587fa2c2fba472730a5ba09c693412d"),
        (144, "924955c31fe7fd809b7303b5c0141282955f4b8390c74cdfd5d80435e0f4b4cb"),
    ),
    "mnist": (
        (14873795, "5f9942f441031c0f1f2e4d162059fd6e19ea808b34c328b6d16cab0ed24c78f2"),
        (29480, "00c6d3c2342fdffb1711e0b5656cac4ce5862d2826399d383a9bac07d612e9f8"),
        (2484884, "b25640fa9e356c618132f5df347c95ef5bae6d9c2596be1de40f7e0ae1c3eac6"),
        (5144, "bcc5385d38f083dba046f5f756e99b32f5ea7fad122c6243c71c2239873065ca"),
    ),
}

_EMNIST_META = {  # split -> (classes, label_offset, n_train, n_test, description)
    "balanced": (EMNIST47, 0, 112800, 18800, "47 balanced classes (digits, A-Z, 11 lower-case)"),
    "byclass": (EMNIST62, 0, 697932, 116323, "62 unbalanced classes (digits, A-Z, a-z)"),
    "bymerge": (EMNIST47, 0, 697932, 116323, "47 unbalanced classes (digits, A-Z, 11 lower-case)"),
    "digits": (DIGITS, 0, 240000, 40000, "10 balanced digit classes"),
    "letters": (LETTERS, 1, 124800, 20800, "26 balanced letter classes (upper and lower case merged)"),
    "mnist": (DIGITS, 0, 60000, 10000, "10 digit classes, MNIST-sized"),
}

_ROLES = ("train_images", "train_labels", "test_images", "test_labels")


def _emnist(split: str) -> DatasetInfo:
    classes, offset, n_train, n_test, desc = _EMNIST_META[split]
    files = {}
    for role, (size, sha) in zip(_ROLES, _EMNIST_FILES[split]):
        part, kind = role.split("_")
        fn = f"emnist-{split}-{part}-{'images-idx3' if kind == 'images' else 'labels-idx1'}-ubyte.gz"
        files[role] = FileInfo(fn, EMNIST_URL + fn, sha, size)
    return DatasetInfo(
        f"emnist-{split}",
        f"emnist-{split}",
        files,
        classes,
        label_offset=offset,
        transposed=True,
        n_train=n_train,
        n_test=n_test,
        description=f"EMNIST {split} (Cohen et al. 2017): {desc}",
        style="emnist",
    )


def _standin() -> DatasetInfo:
    bymerge = _emnist("bymerge")
    files = {"images": bymerge.files["test_images"], "labels": bymerge.files["test_labels"]}
    return DatasetInfo(
        "emnist-standin",
        "emnist-bymerge",
        files,
        EMNIST47,
        transposed=True,
        n_train=98875,
        n_test=17448,
        description="offline stand-in for EMNIST balanced: the canonical bymerge TEST split "
        "(116,323 images, same 47 classes), split stratified 85/15 with a fixed seed; "
        "class counts are unbalanced",
        style="emnist",
    )


DATASETS: dict[str, DatasetInfo] = {
    info.name: info for info in [_mnist(), *(_emnist(s) for s in _EMNIST_META), _standin()]
}


def dataset_names() -> list[str]:
    """Every registered dataset name."""
    return list(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` for ``name`` (case-insensitive, ``_`` or ``-``)."""
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


def class_names(name: str) -> tuple:
    """Class names of dataset ``name``, index = label (``class_names('emnist-balanced')[26] == 'Q'``)."""
    return dataset_info(name).classes


def framing_style(name: str | None) -> str:
    """``"emnist"`` or ``"mnist"``: how the characters of dataset ``name`` are framed. Names the
    registry does not know are framed the EMNIST way when they start with ``emnist`` (a
    user's own EMNIST subset), else the MNIST way (``"arrays"``, ``None``)."""
    key = str(name or "").strip().lower().replace("_", "-")
    info = DATASETS.get(key)
    if info is not None:
        return info.style
    return "emnist" if key.startswith("emnist") else "mnist"
