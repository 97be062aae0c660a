"""oracle.py: what the oracle scripts in tools/ share: TAP output and reading a run's CSVs."""
import csv
import os

_count = 0


def tap(ok, what, detail=""):
    """Prints one TAP line; a failure's detail follows as '#' lines (at most 20)."""
    global _count
    _count += 1
    print(("ok" if ok else "not ok") + f" {_count} - {what}")
    if not ok and detail:
        for line in str(detail).splitlines()[:20]:
            print("#   " + line)


def plan():
    """The closing TAP plan line."""
    print(f"1..{_count}")


def table(run, name):
    """Rows of run/name as dicts."""
    with open(os.path.join(run, name), newline="") as f:
        return list(csv.DictReader(f))
