"""``python -m deployer`` runs the command line."""

from deployer.cli import main

main()
