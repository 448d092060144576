"""``python -m noc`` runs the `pantau` CLI (used where the console script is not on PATH)."""

from noc.cli import main

main()
