"""``python -m pofa`` runs the command-line program."""

from pofa.cli import main

main()
