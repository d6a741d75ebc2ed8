"""The ``aegis tui`` and ``aegis demo`` verbs."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any


def _project(args: argparse.Namespace) -> Path | None:
    return Path(args.project).resolve() if getattr(args, "project", None) else None


def run_app(kernel: Any = None, **options: Any) -> int:
    """Run the TUI on ``kernel`` (built, not running) or on ``kernel_factory=`` (built after the first
    frame, so imports and config loading do not delay it); returns the exit code. Logging goes to
    ``.aegis/state/aegis.log`` (the app sets it up as soon as the kernel exists): nothing on stderr."""
    logging.captureWarnings(True)
    if kernel is not None:
        from aegis_kernel import setup_logging

        setup_logging(kernel)
    from .app import AegisApp

    app = AegisApp(kernel, **options)
    app.run()
    if app.detached_note:
        print(app.detached_note)
    return app.return_code or 0


def tui_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clean", action="store_true",
                        help="start fresh: do not restore the last workspace's tabs and sessions")


def tui_run(args: argparse.Namespace) -> int:
    from aegis_kernel import current_owner, resolve_project_dir

    project = resolve_project_dir(_project(args))
    state = project / ".aegis" / "state"
    attach = None
    if current_owner(state) is not None:  # one kernel per project: attach to it, never a second copy
        from aegis_kernel import ControlError
        from aegis_kernel.client import connect_path, socket_path

        attach = socket_path(state)  # resolved again when connecting: the owner may still be opening it
        try:
            connect_path(attach)  # a socket folder that is not ours is refused here, before any frame
        except ControlError as exc:
            print(f"aegis: cannot attach to the Aegis that owns {project}: {exc}", file=sys.stderr)
            return 1

    def build() -> Any:
        from aegis_kernel import build_kernel

        return build_kernel(project)

    return run_app(kernel_factory=build, project_dir=project, clean=bool(getattr(args, "clean", False)),
                   attach=attach)


def demo_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR", help="build the demo project here (kept) instead of a temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the temp demo project after quitting")
    parser.add_argument("--no-tour", action="store_true", help="open the demo project without playing the tour")
    parser.add_argument("--tour-speed", type=float, default=1.0, metavar="X",
                        help="tour speed multiplier (2 = twice as fast, 0 = no pauses; default 1)")


def demo_run(args: argparse.Namespace) -> int:
    import tempfile

    from .demo import make_demo_kernel, make_tour, write_demo_project

    if args.dir:
        project = Path(args.dir).resolve()
        project.mkdir(parents=True, exist_ok=True)
        remove = False
    else:
        project = Path(tempfile.mkdtemp(prefix="aegis-demo-"))
        remove = not args.keep
    try:
        write_demo_project(project)
        tour = None if args.no_tour else make_tour(max(0.0, args.tour_speed))
        code = run_app(kernel_factory=lambda: make_demo_kernel(project), project_dir=project, clean=True,
                       tour=tour, title="aegis demo")
    finally:
        if remove:
            shutil.rmtree(project, ignore_errors=True)
    print(f"aegis demo: {'removed' if remove else 'kept'} the demo project {project}")
    return code
