"""The `mizu` command line: a thin typer skin over mizu_core."""
