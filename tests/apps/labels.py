"""App for tests/python/test_metrics.py: names /metrics has to escape (an
exported function whose name holds a quote, a backslash, a newline and
non-ASCII letters) and an actor with public and private methods."""
import gild


def ping():
    return "pong"


def _odd():
    return "odd"


# Exported under a name no def can have: what the app module's namespace
# holds is what gild exports.
WEIRD = 'we"ird\\name\nline é✓'
globals()[WEIRD] = _odd


@gild.actor
class Box:
    def get(self):
        return 1

    def _hidden(self):
        return 2
