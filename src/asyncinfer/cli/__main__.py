"""``python -m asyncinfer.cli``: the same as the ``asyncinfer`` command (a detached local stack runs this way)."""

from asyncinfer.cli import main

if __name__ == "__main__":
    main()
