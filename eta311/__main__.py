"""`python -m eta311` runs the CLI."""

from eta311.cli import app

if __name__ == "__main__":
    app()
