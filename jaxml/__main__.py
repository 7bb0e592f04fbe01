"""``python -m jaxml`` is the ``jaxml`` console script."""

from jaxml.experiment.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
