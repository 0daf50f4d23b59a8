"""The `madoguchi` command's entry point: the command line, started without the collector.

Starting a process imports some 1,500 modules and builds the app: a few hundred thousand
objects, none of them garbage, and the cyclic collector walked them again and again while they
were made: a command took 2.1 s to start with it and takes 1.4 s without (every command, worker
and `mail ingest` of an MTA).
The collector is off until the app is built; what the start made is then frozen (never walked
again) and the collector runs as usual for the work.
"""

import gc


def main() -> None:
    gc.disable()
    from consult.cli import main as command_line

    command_line()


def resume_collection() -> None:
    """After the app is built: keep what the start made out of every walk, collect the rest."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
