"""`python -m leadscore`, and the file spark-submit runs: the leadscore command line."""

from leadscore.cli import app

if __name__ == "__main__":
    app()
