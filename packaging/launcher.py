"""The bundle's entry point: the same main() as the installed `chatgui` command.

A bundle has no `python -m pip`; `chatgui --run-pip ARGS` runs the bundled pip instead (see
chatgui/frozen_pip.py: the default model is fetched that way). That must be decided before Qt starts.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from chatgui.frozen_pip import maybe_run_pip

    code = maybe_run_pip(sys.argv)
    if code is None:
        from chatgui.ui.app import main

        code = main()
    raise SystemExit(code)
