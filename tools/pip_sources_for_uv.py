"""`make install` and `make lock` run uv, which reads no pip configuration. This prints, as shell exports
for uv, the package sources and constraints pip is configured with (an index mirror, a folder of wheels,
a version cap), so that uv installs and locks from what pip would, and, as pip does, takes the best
version found on any of them. (The lock leaves out which package needs which: those notes would name
the machine's constraint files.) Run with the virtual environment's Python, whose pip it asks.
"""

import shlex
import subprocess
import sys

NAMES = {  # pip's option: uv's variable
    "index-url": "UV_DEFAULT_INDEX",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
}
listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
for line in listing.stdout.splitlines():
    key, _, value = line.partition("=")
    name = NAMES.get(key.rpartition(".")[2])
    if name:
        values = shlex.split(value)[0].split() if value else []
        print(f"export {name}={shlex.quote((',' if name == 'UV_FIND_LINKS' else ' ').join(values))}")
print("export UV_INDEX_STRATEGY=unsafe-best-match")
