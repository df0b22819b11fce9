"""``python -m sparkhist``; also the Python file ``spark-submit`` runs (it takes only ``.py`` files):
``spark-submit --master yarn "$(python -m sparkhist --main-file)" index-on-spark ...``."""

import sys
from pathlib import Path

if __name__ == "__main__":
    if sys.argv[1:] == ["--main-file"]:
        print(Path(__file__).resolve())
    else:
        from sparkhist.cli import main

        main(prog_name="sparkhist")
